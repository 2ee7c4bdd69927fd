# Compiled by setup.py when Cython is present; the .py beside it is the source and runs as is without it.
cimport cython

# The options bytes as a C buffer: the walk over them is C byte reads.
@cython.locals(i=Py_ssize_t, n=Py_ssize_t, kind=int, length=int)
cpdef parse_options(const unsigned char[:] raw)
