# Compiled by setup.py when Cython is present; the .py beside it is the source and runs as is without it.
cimport cython
from pytest_tcpcopy.capture.packet cimport Packet
from pytest_tcpcopy.tcp._state cimport SessionStateMachine
from pytest_tcpcopy.tcp.events cimport SessionCounters
from pytest_tcpcopy.tcp.options cimport timestamp_of
from pytest_tcpcopy.tcp.seq cimport seq_add, seq_diff, unwrap

cdef class Chunk:
    cdef public object data, delta, until, ts_val
    cdef public int kind
    cdef public Py_ssize_t pos

cdef class CapturedStream:
    cdef object _high_ack, _prev_ack
    cdef long long _acked, _base
    cdef SessionCounters _counters
    cdef SessionStateMachine _sm
    cdef public object baseline_ack, isn, syn, unsent
    cdef public dict held
    cdef public long long next

    @cython.locals(flags=cython.int, off=cython.longlong)
    cpdef bint feed(self, Packet pkt)
    cpdef end(self)
    @cython.locals(n=cython.longlong, left=cython.longlong, k=cython.longlong, c=Chunk)
    cpdef tuple take_piece(self, long long limit)
    @cython.locals(unsent=object)
    cpdef requeue(self, list pieces)
    cpdef long long wire(self, long long off)
    cpdef last_response_length(self, bint pipeline)
    @cython.locals(skip=cython.longlong, flags=cython.int)
    cdef _accept(self, Packet pkt, long long off)
    cdef _delta(self, Packet pkt)

cdef _captured_ts(Packet pkt)
