# C types of the module beside it, for Cython (speedups.py lists the modules it compiles).
from pytest_tcpcopy.kernel.codecs cimport SutSegment, parse_options
from pytest_tcpcopy.kernel.packet cimport Packet
from pytest_tcpcopy.tcp.output cimport SessionOutput
from pytest_tcpcopy.tcp.seq cimport seq_add

# TCP flag bits, as C ints.
cdef int ACK, RST, SYN

cdef class Handshake:
    cdef long _mss
    cdef SessionOutput _out
    cdef bytes _packet
    cdef object _syn_opts
    cdef public object establish_at, old_ack
    cdef public bint fake
    cdef public long long off
    cdef public long smss, wscale

    cpdef open(self, Packet captured, long long off, long long wire, double now, double timeout)
    cpdef resend(self)
    cpdef int answer(self, SutSegment seg, long long syn_wire)
