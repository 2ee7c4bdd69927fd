# Compiled by setup.py when Cython is present; the .py beside it is the source and runs as is without it.
cimport cython
from pytest_tcpcopy.capture.packet cimport Packet
from pytest_tcpcopy.tcp.options cimport parse_options
from pytest_tcpcopy.tcp.output cimport SessionOutput
from pytest_tcpcopy.tcp.seq cimport seq_add
from pytest_tcpcopy.tcp.wire cimport SutSegment

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
    @cython.locals(flags=cython.int, syn_ack_wire=cython.longlong)
    cpdef int answer(self, SutSegment seg, long long syn_wire)

