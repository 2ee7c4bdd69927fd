from pytest_tcpcopy.kernel.packet cimport Packet, new_packet

# pcap records
cdef Py_ssize_t _MIN_FRAME, _MAX_ADDRESSES
cdef dict _ADDRESSES
cpdef tuple decode_run(bytes buf, Py_ssize_t pos, long long index, bint little, double units,
                       Py_ssize_t max_record, list out, Py_ssize_t limit=*)
cpdef Packet decode_common_frame(long long index, double ts, bytes frame)
cdef Packet _frame_packet(bytes buf, Py_ssize_t start, Py_ssize_t captured, long long index, double ts)
cdef bytes _address(bytes buf, Py_ssize_t at)
cdef inline unsigned int _be16(bytes buf, Py_ssize_t at)
cdef inline unsigned long _be32(bytes buf, Py_ssize_t at)
cdef inline unsigned long _le32(bytes buf, Py_ssize_t at)

# checksums
cdef long long _M
cpdef long long partial_sum(data)
cpdef long long finish(long long total)

# TCP options
cdef int _EOL, _NOP, _MSS, _WSCALE, _SACK_PERMITTED, _TIMESTAMP
cpdef parse_options(raw)
cpdef timestamp_of(raw)

# SUT segments
cdef class SutSegment:
    cdef public object src, dst, options, payload
    cdef public long long seq, ack, ts_val, ts_ecr
    cdef public long sport, dport, flags, window
    cdef public bint has_ts
    cdef public Py_ssize_t payload_len

cpdef SutSegment parse_sut_segment(buf)

# packets sent
cdef int _PROTO_TCP, _DF, _TTL
cdef class SegmentBuilder:
    cdef readonly object src, dst
    cdef unsigned long _src_ip, _dst_ip, _sport, _dport
    cdef long long _ip_base, _tcp_base

    cpdef bytes build(self, unsigned long seq, unsigned long ack, int flags, long window, options, payload,
                      long long payload_sum, long ip_id)
    cpdef bytes build_timestamped(self, unsigned long seq, unsigned long ack, int flags, long window,
                                  unsigned long ts_val, unsigned long ts_ecr, payload, long long payload_sum,
                                  long ip_id)
    cdef bytes _packet(self, unsigned long seq, unsigned long ack, int flags, long window, bint ts,
                       unsigned long ts_val, unsigned long ts_ecr, options, payload, long long payload_sum,
                       long ip_id)
cdef void _put16(unsigned char *p, Py_ssize_t at, unsigned long value) noexcept
cdef void _put32(unsigned char *p, Py_ssize_t at, unsigned long value) noexcept

# the intercept and its channel
cpdef segment_key(segment)
cdef Py_ssize_t _PREFIXED
cdef list _PREFIXES
cpdef list record_bodies(records, Py_ssize_t max_body)
cpdef tuple decode_records(bytes body)
