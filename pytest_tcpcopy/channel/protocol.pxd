# Compiled by setup.py when Cython is present; the .py beside it is the source and runs as is without it.
cimport cython

# The records of a RECORDS frame: framing hands every body over as bytes.
@cython.locals(records=list, pos=Py_ssize_t, end=Py_ssize_t, n=Py_ssize_t, raw='const char *')
cpdef tuple _decode_records(bytes body)

# Per record sent by the intercept.
cdef Py_ssize_t _MAX_RECORD, _PREFIXED
@cython.locals(frames=list, parts=list, size=Py_ssize_t, n=Py_ssize_t, prefixes=list)
cpdef bytes encode_records(records)
