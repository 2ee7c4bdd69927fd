# Compiled by setup.py when Cython is present; the .py beside it is the source and runs as is without it.
cimport cython
from pytest_tcpcopy.channel.protocol cimport encode_records
from pytest_tcpcopy.intercept.routing cimport segment_key

# The per-segment path (handle_segment) as C field reads.
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

    @cython.locals(counters=Counters, owner=_Copier, tcp=Py_ssize_t)
    cpdef handle_segment(self, segment)
