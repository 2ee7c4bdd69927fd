# Compiled by setup.py when Cython is present; the .py beside it is the source and runs as is without it.
cimport cython

from pytest_tcpcopy.capture.packet cimport Packet, new_packet

cdef Py_ssize_t _MIN_FRAME, _MAX_ADDRESSES
cdef dict _ADDRESSES

@cython.locals(size=Py_ssize_t, cut=Py_ssize_t, start=Py_ssize_t, seconds=cython.ulong,
               fraction=cython.ulong, captured=Py_ssize_t, total=Py_ssize_t, data_start=Py_ssize_t,
               ip_end=Py_ssize_t, payload_end=Py_ssize_t, stop=Py_ssize_t, src=bytes, dst=bytes,
               raw='const char *')
cpdef tuple decode_run_bytes(bytes buf, Py_ssize_t pos, Py_ssize_t index, bint little, double units,
                             Py_ssize_t max_record, list out, Py_ssize_t limit=*)

cdef unsigned int _be16(bytes buf, Py_ssize_t at)
# A byte shifted into bit 31 of a C int overflows: the bytes are held unsigned first.
@cython.locals(high=cython.ulong, b1=cython.ulong, b2=cython.ulong, b3=cython.ulong)
cpdef unsigned long be32(bytes buf, Py_ssize_t at)
@cython.locals(high=cython.ulong, b0=cython.ulong, b1=cython.ulong, b2=cython.ulong)
cdef unsigned long _le32(bytes buf, Py_ssize_t at)

cdef bytes _address(bytes buf, Py_ssize_t at)
