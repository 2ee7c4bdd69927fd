# C types of the module beside it, for Cython (speedups.py lists the modules it compiles).
from pytest_tcpcopy.tcp._state cimport SessionStateMachine
from pytest_tcpcopy.tcp.output cimport SessionOutput

cdef class RequestGate:
    cdef object _framer, _scanner, _http
    cdef long long _framer_base, _requests, _connections
    cdef SessionOutput _out
    cdef bint _payload, _pipeline
    cdef double _quiet_floor, _timeout
    cdef SessionStateMachine _sm
    cdef public double acked_at, last_data, max_gap, sent_at
    cdef public object ended_by, expected
    cdef public long long got

    cpdef connect(self, double now)
    cpdef on_request(self, data, double now, bint new)
    cpdef on_acked(self, double now)
    cpdef on_data(self, long long n, data, double now)
    cpdef expected_of(self, delta, until)
    cpdef bint over(self, expected, double now, bint hole, bint in_flight)
    cpdef double quiet_until(self)
    cpdef double timeout_at(self)
    cdef double _since(self)
    cpdef double deadline(self, bint hole)
    cpdef str cut(self, double now)
    cdef bint _framed(self)
    cdef bint _end(self, by)
    cdef _length(self)
