# C types of the module beside it, for Cython (speedups.py lists the modules it compiles).
from pytest_tcpcopy.flows.assembler cimport FlowAssembler
from pytest_tcpcopy.flows.session cimport CapturedSession
from pytest_tcpcopy.kernel.codecs cimport SutSegment, parse_sut_segment
from pytest_tcpcopy.kernel.packet cimport Packet
from pytest_tcpcopy.tcp.events cimport RequestSent, ResponseData
from pytest_tcpcopy.tcp.seq cimport unwrap
from pytest_tcpcopy.tcp.translator cimport SessionTranslator

# The SYN flag bit, as a C int.
cdef int SYN

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

    cpdef feed_capture(self, Packet pkt, double now)
    cpdef feed_sut(self, record, double now)
    cpdef next_timer(self)
    cpdef on_timer(self, double now)
    cpdef list packets_to_send(self)
    cpdef list registrations(self)
    cpdef stop(self, str reason, double now)
    cdef _client_packet(self, CapturedSession session, Packet pkt, double now)
    cdef _deliver_client(self, _Copy copy, Packet pkt, double now)
    cdef _deliver_sut(self, _Copy copy, SutSegment seg, double now)
    cdef _deliver_end(self, _Copy copy, double now)
    cdef _add_to_schedule(self, long long index, Packet pkt)
    cdef _free_clients(self, captured_client)
    cdef list _start(self, long long index, captured_client, list clients, double now)
    cdef _capture_ended(self, long long index, double now)
    cdef _drain_dirty(self)
    cdef _drain(self, _Copy copy, double now)
    cdef _record(self, result, list events, double rel, schedule)
    cdef _response_data(self, result, ResponseData data, double rel)
    cdef _request_sent(self, result, RequestSent sent, double rel, schedule)
    cdef bint _not_replayed(self, long long index, captured_client, double now)
    cdef _retire(self, _Copy copy, double now)
    cdef bint _is_due(self, _Copy copy, deadline)
    cdef _requeue(self, _Copy copy, deadline)
    cdef _fire(self, _Copy copy, deadline, double now)
    cdef _queue(self, _Copy copy)
    cdef _start_waiting(self, double now)
