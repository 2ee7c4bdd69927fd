# Compiled by setup.py when Cython is present; the .py beside it is the source and runs as is without it.
cimport cython
from pytest_tcpcopy.capture.packet cimport Packet
from pytest_tcpcopy.tcp.translator cimport SessionTranslator
from pytest_tcpcopy.tcp.wire cimport SutSegment, parse_sut_segment
from pytest_tcpcopy.flows.assembler cimport FlowAssembler
from pytest_tcpcopy.flows.session cimport CapturedSession
from pytest_tcpcopy.tcp.events cimport Aborted, Closed, RequestSent, ResponseData, ResponseEnded

cdef class _Copy:
    cdef public SessionTranslator translator
    cdef public object result, client_key, timer, queued

cdef class _Schedule:
    cdef object _isn, _starts, _times
    cdef long long _high

cdef class ReplayEngine:
    cdef public object target, unrouted_sut_segments, requests, errors, delayed_starts
    cdef object _target_text, _map_client, _config, _only, _epoch, _pacer, _stopped
    cdef FlowAssembler _flows
    cdef dict _copies, _by_client, _waiting, _dirty, _schedules, _due
    cdef list _timers, _out, _registrations, _done
    cdef set _ended_early
    cdef long long _amplify, _max_active, _active, _sessions_seen, _taken
    cdef bint _capture_done
    cdef double _now

    @cython.locals(session=CapturedSession, from_client=bint)
    cpdef feed_capture(self, Packet pkt, double now)
    @cython.locals(copy=_Copy, seg=SutSegment)
    cpdef feed_sut(self, record, double now)
    @cython.locals(copy=_Copy, queued=list)
    cpdef next_timer(self)
    @cython.locals(copy=_Copy)
    cpdef on_timer(self, double now)
    cpdef list packets_to_send(self)
    cpdef list registrations(self)
    @cython.locals(copy=_Copy)
    cpdef stop(self, str reason, double now)
    @cython.locals(copy=_Copy)
    cdef _client_packet(self, long long index, captured_client, Packet pkt, double now)
    cdef _add_to_schedule(self, long long index, Packet pkt)
    cdef _free_clients(self, captured_client)
    cdef list _start(self, long long index, captured_client, list clients, double now)
    @cython.locals(copy=_Copy)
    cdef _capture_ended(self, long long index, double now)
    cdef _drain_dirty(self)
    @cython.locals(translator=SessionTranslator)
    cdef _drain(self, _Copy copy, double now)
    @cython.locals(data=ResponseData, sent=RequestSent, closed=Closed, aborted=Aborted, ended=ResponseEnded)
    cdef _record(self, result, list events, double rel, schedule)
    cdef bint _not_replayed(self, long long index, captured_client, double now)
    cdef _retire(self, _Copy copy, double now)
    @cython.locals(queued=list)
    cdef _queue(self, _Copy copy)
    @cython.locals(copy=_Copy)
    cdef _start_waiting(self, double now)

# Enum members as C globals (see the note in the .py).
cdef object _ABORTED, _COMPLETE, _NOT_ESTABLISHED, _NOT_REPLAYED, _SUT_RESET, _TIMEOUT
cdef dict _CLOSED_REASON, _END_TEXT
