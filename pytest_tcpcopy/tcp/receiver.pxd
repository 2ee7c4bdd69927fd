# C types of the module beside it, for Cython (speedups.py lists the modules it compiles).
from pytest_tcpcopy.kernel.codecs cimport SutSegment
from pytest_tcpcopy.tcp._state cimport SessionStateMachine
from pytest_tcpcopy.tcp.events cimport SessionCounters
from pytest_tcpcopy.tcp.gate cimport RequestGate
from pytest_tcpcopy.tcp.output cimport SessionOutput
from pytest_tcpcopy.tcp.seq cimport seq_add, seq_diff, unwrap

# TCP flag bits, as C ints.
cdef int ACK, FIN

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
    cpdef receive(self, SutSegment seg, double now)
    cdef _deliver(self, long long off, long long n, data, int fin, double now)
