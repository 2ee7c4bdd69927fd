# C types of the module beside it, for Cython (speedups.py lists the modules it compiles).
cdef class ByteStream:
    cdef public object base_seq
    cdef public bint anchored
    cdef public long long end
    cdef list _ranges, _chunks
    cdef long long _known
    cdef bint _keep

    cpdef int add(self, seq, payload, long long wire_len, double ts) except -1
