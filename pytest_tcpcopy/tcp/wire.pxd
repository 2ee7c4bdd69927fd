# Compiled by setup.py when Cython is present; the .py beside it is the source and runs as is without it.
cimport cython
from pytest_tcpcopy.capture.inplace cimport be32
from pytest_tcpcopy.tcp.checksum cimport sum_words

cdef long _M, _PROTO_TCP, _DF, _TS_OPTION_LEN, _TTL

cdef class SutSegment:
    cdef public object src, dst, options, payload
    cdef public long long seq, ack, ts_val, ts_ecr
    cdef public long sport, dport, flags, window
    cdef public bint has_ts
    cdef public Py_ssize_t payload_len

cpdef SutSegment parse_sut_segment(buf)
@cython.locals(seg=SutSegment, total=Py_ssize_t, start=Py_ssize_t, size=Py_ssize_t, raw='const char *')
cpdef parse_v4_read(bytes buf)

cdef class SegmentBuilder:
    cdef public object dst, src
    cdef object _addrs, _ports
    cdef long long _ip_base, _tcp_base
    cdef unsigned long _src_ip, _dst_ip

    @cython.locals(addrs=cython.longlong)
    cdef _sum_constants(self, unsigned long src_ip, unsigned long dst_ip, long sport, long dport)
    cpdef bytes build(self, long long seq, long long ack, int flags, long long window, options,
                      payload, long long payload_sum, long long ip_id)
    cpdef bytes build_packed(self, long long seq, long long ack, int flags, long long window, options,
                             payload, long long payload_sum, long long ip_id)
    cpdef bytes build_timestamped(self, long long seq, long long ack, int flags, long long window,
                                  unsigned long ts_val, unsigned long ts_ecr, payload, long long payload_sum,
                                  long long ip_id)
    cpdef bytes build_written(self, long long seq, long long ack, int flags, long long window, options,
                              payload, long long payload_sum, long long ip_id)
    @cython.locals(olen=Py_ssize_t, tcp_hlen=Py_ssize_t, tcp_len=Py_ssize_t, total=Py_ssize_t,
                   offflags=cython.long, s=cython.longlong, i=Py_ssize_t, ip_sum=cython.long,
                   tcp_sum=cython.long, buf=bytearray, p='unsigned char *', sport=cython.long,
                   dport=cython.long, first=Py_ssize_t, opts=bytes)
    cdef bytes _write(self, long long seq, long long ack, int flags, long long window, options,
                      payload, long long payload_sum, long long ip_id, bint ts, unsigned long ts_val,
                      unsigned long ts_ecr)

cdef _set_timestamp(SutSegment seg, ts)
cdef void _store32(unsigned char *p, Py_ssize_t at, unsigned long value)
