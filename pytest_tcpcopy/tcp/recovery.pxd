# Compiled by setup.py when Cython is present; the .py beside it is the source and runs as is without it.
cimport cython
from pytest_tcpcopy.tcp.events cimport SessionCounters

cdef class Sent:
    cdef public object data
    cdef public long long end, off, psum
    cdef public int flags

cdef class Recovery:
    cdef SessionCounters _counters
    cdef double _rto_initial, _rto_max
    cdef public long long dupacks, smss, snd_nxt, snd_una, snd_wnd, wscale
    cdef public object inflight, recover, rto_at
    cdef public double rto

    cpdef start(self, long long off, long long window, long long wscale, long long smss)
    cpdef restart(self, long long resume, double now)
    @cython.locals(una=cython.longlong, s=Sent)
    cpdef list unacked(self)
    cpdef arm(self, double now)
    cpdef long long room(self)
    @cython.locals(sent=Sent)
    cpdef Sent track(self, data, long long psum, int flags, double now)
    @cython.locals(resend=Sent)
    cpdef Sent on_ack(self, long long ack, long long window, bint pure, double now)
    cpdef Sent on_timeout(self, double now)
    cpdef stop(self)
