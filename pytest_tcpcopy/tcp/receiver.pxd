# Compiled by setup.py when Cython is present; the .py beside it is the source and runs as is without it.
cimport cython
from pytest_tcpcopy.tcp._state cimport SessionStateMachine
from pytest_tcpcopy.tcp.events cimport ResponseData, SessionCounters
from pytest_tcpcopy.tcp.gate cimport RequestGate
from pytest_tcpcopy.tcp.output cimport SessionOutput
from pytest_tcpcopy.tcp.seq cimport seq_add, seq_diff, unwrap
from pytest_tcpcopy.tcp.wire cimport SutSegment

cdef class Receiver:
    cdef SessionCounters _counters
    cdef RequestGate _gate
    cdef SessionOutput _out
    cdef bint _payload
    cdef SessionStateMachine _sm
    cdef public bint ack_pending
    cdef public long long base, nxt
    cdef long long _isn1
    cdef public dict held
    cdef public object sut_isn

    cpdef connect(self, long long sut_isn)
    cpdef long long disconnect(self)
    cpdef long long ack(self)
    cpdef on_syn(self, SutSegment seg)
    cpdef bint believes_rst(self, SutSegment seg)
    @cython.locals(off=cython.longlong, n=cython.longlong, fin=cython.int)
    cpdef receive(self, SutSegment seg, double now)
    @cython.locals(new=cython.longlong)
    cdef _deliver(self, long long off, long long n, data, int fin, double now)
