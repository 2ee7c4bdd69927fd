# Compiled by setup.py when Cython is present; the .py beside it is the source and runs as is without it.
cdef class SessionStateMachine:
    cdef public object state
    cdef public bint connected, terminal

    cpdef fire(self, trigger)
