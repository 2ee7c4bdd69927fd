# C types of the module beside it, for Cython (speedups.py lists the modules it compiles).
# Offsets and sequence numbers fit in 64 bits.
cdef long long _MASK, _HALF
cpdef long long seq_add(long long seq, long long n)
cpdef long long seq_diff(long long a, long long b)
cpdef bint seq_lt(long long a, long long b)
cpdef bint seq_le(long long a, long long b)
cpdef bint seq_gt(long long a, long long b)
cpdef bint seq_ge(long long a, long long b)
cpdef long long unwrap(long long seq, long long base, long long near)
