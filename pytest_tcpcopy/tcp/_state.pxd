# C types of the module beside it, for Cython (speedups.py lists the modules it compiles).
from pytest_tcpcopy.tcp.events cimport Aborted, Closed, Established, Reconnected

cdef class SessionStateMachine:
    cdef public object state, closed_first
    cdef public bint connected, terminal, sut_closed, sut_reset, capture_closed, capture_done, gap
    cdef public int waiting_for

    cpdef fire(self, trigger)
    cpdef send_syn(self)
    cpdef Established established(self, bint fake_syn)
    cpdef send_fin(self)
    cpdef Reconnected reconnect(self, long long attempt, long long resume_offset)
    cpdef Closed finish(self, by, bint reset)
    cpdef Aborted abort(self, reason, detail)
    cpdef on_sut_fin(self)
    cpdef on_sut_reset_after_answers(self)
    cpdef on_capture_closed(self)
    cpdef on_capture_gap(self)
    cpdef on_capture_done(self)
    cpdef wait_for(self, int what)
