# C types of the module beside it, for Cython (speedups.py lists the modules it compiles).
from pytest_tcpcopy.kernel.codecs cimport timestamp_of
from pytest_tcpcopy.kernel.packet cimport Packet
from pytest_tcpcopy.tcp._state cimport SessionStateMachine
from pytest_tcpcopy.tcp.events cimport SessionCounters
from pytest_tcpcopy.tcp.seq cimport seq_add, seq_diff, unwrap

# TCP flag bits, as C ints.
cdef int ACK, FIN, RST, SYN

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

    cpdef bint feed(self, Packet pkt)
    cpdef end(self)
    cpdef Chunk head(self)
    cpdef tuple take_piece(self, long long limit)
    cpdef requeue(self, list pieces)
    cpdef long long wire(self, long long off)
    cpdef last_response_length(self, bint pipeline)
    cdef _accept(self, Packet pkt, long long off)
    cdef _delta(self, Packet pkt)

cdef _captured_ts(Packet pkt)
