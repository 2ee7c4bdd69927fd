# Compiled by setup.py when Cython is present; the .py beside it is the source and runs as is without it.
cdef class SegmentBuilder:
    cdef public object dst, src
    cdef object _addrs, _ports
    cdef long long _ip_base, _tcp_base

    cpdef bytes build(self, long long seq, long long ack, int flags, long long window, options,
                      payload, long long payload_sum, long long ip_id)
