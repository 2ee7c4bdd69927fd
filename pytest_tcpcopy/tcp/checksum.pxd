# Compiled by setup.py when Cython is present; the .py beside it is the source and runs as is without it.
cimport cython

cdef long long _M
cdef bint COMPILED

cpdef long long partial_sum(data)
# Sums of up to 2**48 bytes' words fit the 64-bit total.
@cython.locals(n=Py_ssize_t, i=Py_ssize_t, total=cython.ulonglong)
cpdef long long sum_words(bytes data)
