# C types of the module beside it, for Cython (speedups.py lists the modules it compiles).
from pytest_tcpcopy.kernel.codecs cimport segment_key

cdef class Counters:
    cdef public long long queued, forwarded, parked, unowned, expired, malformed, lost, copiers, refused

cdef class _Copier:
    cdef public object channel, outbuf, peer, sock
    cdef public list pending
    cdef public bint writing

cdef class InterceptServer:
    cdef public bint capture_payload
    cdef public Counters counters
    cdef public object routes
    cdef dict _owners
    cdef object _capabilities, _name, _sel, _listener
    cdef set _copiers, _dirty
    cdef bint _stopping
    cdef int _wake_r, _wake_w

    cpdef handle_segment(self, segment)
