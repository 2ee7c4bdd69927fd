# Compiled by setup.py when Cython is present; the .py beside it is the source and runs as is without it.
cimport cython
from pytest_tcpcopy.capture.inplace cimport be32

# Any bytes-like in, walked as typed bytes: C byte reads (a typed memoryview would cost more to
# make than the walk over a SYN's options).
@cython.locals(data=bytes, i=Py_ssize_t, n=Py_ssize_t, kind=int, length=int, shift=int)
cpdef parse_options(raw)
@cython.locals(data=bytes, n=Py_ssize_t)
cpdef timestamp_of(raw)

cdef int _EOL, _NOP, _MSS_KIND, _WSCALE, _SACK_PERMITTED, _TIMESTAMP, _MAX_WSCALE
