# Compiled by setup.py when Cython is present; the .py beside it is the source and runs as is without it.
cimport cython
from pytest_tcpcopy.capture.inplace cimport be32

# Per queued segment: byte reads and slices in C.
@cython.locals(data=bytes, raw='const char *', n=Py_ssize_t, version=int, tcp=Py_ssize_t)
cpdef segment_key(segment)
