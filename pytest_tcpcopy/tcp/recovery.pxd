# C types of the module beside it, for Cython (speedups.py lists the modules it compiles).
from pytest_tcpcopy.tcp.events cimport SessionCounters

# The FIN flag bit, as a C int.
cdef int FIN

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
    cpdef list unacked(self)
    cpdef arm(self, double now)
    cpdef long long room(self)
    cpdef Sent track(self, data, long long psum, int flags, double now)
    cpdef Sent on_ack(self, long long ack, long long window, bint pure, double now)
    cpdef Sent on_timeout(self, double now)
    cpdef stop(self)
