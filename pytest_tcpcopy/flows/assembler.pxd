# Compiled by setup.py when Cython is present; the .py beside it is the source and runs as is without it.
cdef class FlowAssembler:
    cdef object _server_ports, _routes, _closing, _finished
    cdef bint _keep
    cdef double _linger
    cdef long long _created

    cpdef feed(self, pkt)
