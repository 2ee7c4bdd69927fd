# Compiled by setup.py when Cython is present; the .py beside it is the source and runs as is without it.
cimport cython
cdef class ByteStream:
    cdef public object base_seq
    cdef public bint anchored
    cdef public long long end
    cdef list _ranges, _chunks
    cdef long long _known
    cdef bint _keep

    @cython.locals(end=cython.longlong)
    cpdef int add(self, seq, payload, long long wire_len, double ts) except -1
