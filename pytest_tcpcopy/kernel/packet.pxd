cdef class Packet:
    cdef readonly long long index, sport, dport, seq, ack, flags, window, payload_len, ip_id, ttl
    cdef readonly double ts
    cdef readonly object src, dst, options, payload

    cpdef tuple as_tuple(self)

cpdef Packet new_packet(long long index, double ts, bytes src, bytes dst, long long sport, long long dport,
                        long long seq, long long ack, long long flags, long long window, bytes options,
                        bytes payload, long long payload_len, long long ip_id, long long ttl)
