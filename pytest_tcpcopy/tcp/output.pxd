# C types of the module beside it, for Cython (speedups.py lists the modules it compiles).
from pytest_tcpcopy.kernel.codecs cimport SegmentBuilder, SutSegment
from pytest_tcpcopy.tcp.events cimport SessionCounters
from pytest_tcpcopy.tcp.seq cimport seq_ge

cdef class SessionOutput:
    cdef SegmentBuilder _builder
    cdef long _ip_id
    cdef public SessionCounters counters
    cdef public list packets, events
    cdef public bint ts_ok
    cdef public long long ts_recent, ts_last

    cpdef segment(self, long long seq, long long ack, int flags, payload=*, long long psum=*)
    cpdef bytes build(self, long long seq, long long ack, int flags, long long window, options)
    cpdef queue(self, bytes packet)
    cpdef echo(self, SutSegment seg)
    cpdef sent_ts(self, long long ts_val)
    cpdef list take_packets(self)
    cpdef list take_events(self)
