# C types for translator.py when compiled (see setup.py): the per-segment state as C fields.
cimport cython
from pytest_tcpcopy.capture.packet cimport Packet
from pytest_tcpcopy.tcp.checksum cimport partial_sum
from pytest_tcpcopy.tcp.events cimport SessionCounters
from pytest_tcpcopy.tcp.seq cimport seq_diff, seq_ge, unwrap
from pytest_tcpcopy.tcp.wire cimport SegmentBuilder, SutSegment
from pytest_tcpcopy.tcp._state cimport SessionStateMachine
from pytest_tcpcopy.tcp.options cimport parse_options, timestamp_of

cdef class TranslatorConfig:
    cdef readonly object pipeline, mss, rto, establish_timeout, idle_timeout, response_quiet
    cdef readonly object capture_payload, max_reconnects, close_linger

cdef class _Chunk:
    cdef public object data, delta, ts_val
    cdef public int kind
    cdef public Py_ssize_t pos

cdef class _Sent:
    cdef public object data
    cdef public long long end, off, psum
    cdef public int flags

cdef class SessionTranslator:
    cdef public bint _ack_pending, _cap_closed, _capture_done, _fake_syn, _gap, _gate_blocked
    cdef public bint _last_full, _sut_fin, _sut_reset, _ts_ok, _window_blocked
    cdef public long long _cap_next, _rcv_nxt, _resp_base, _resp_since_req, _snd_nxt, _snd_una
    cdef public long long _snd_wnd, _syn_off, _ts_last, _ts_recent
    cdef public long _dupacks, _ip_id, _rcv_mss, _reconnects, _smss, _sut_ws
    cdef public double _last_progress, _last_sut_data, _rto
    cdef public object _baseline_ack, _closed_first, _establish_at, _events, _held
    cdef public object _inflight, _isn, _linger_at, _old_ack, _out, _prev_cap_ack, _pump_at, _quiet
    cdef public object _recover, _rto_at, _sut_held, _sut_isn, _syn, _syn_bytes, _syn_opts
    cdef public object _unsent, client, copy, session_id, target
    cdef public TranslatorConfig config
    cdef public SessionCounters counters
    cdef public SegmentBuilder _builder
    cdef public SessionStateMachine _sm

    cpdef bint feed_client(self, Packet pkt, double now)
    cpdef feed_sut(self, SutSegment seg, double now)
    cpdef next_timer(self)
    cpdef on_timer(self, double now)
    cpdef list packets_to_send(self)
    cpdef list events(self)
    @cython.locals(skip=cython.longlong, flags=cython.int)
    cdef _accept_captured(self, Packet pkt, long long off)
    cdef _delta(self, Packet pkt)
    cdef _captured_ts(self, Packet pkt)
    @cython.locals(flags=cython.int)
    cdef _on_syn_sent_segment(self, SutSegment seg, double now)
    @cython.locals(ack=cython.longlong, window=cython.longlong)
    cdef bint _on_ack(self, SutSegment seg, double now)
    @cython.locals(off=cython.longlong, n=cython.longlong, fin=cython.int)
    cdef _receive(self, SutSegment seg, double now)
    @cython.locals(new=cython.longlong)
    cdef _deliver(self, long long off, long long n, data, int fin, double now)
    cdef _settle(self)
    @cython.locals(run_off=cython.longlong, run_len=cython.longlong, room=cython.longlong, c=_Chunk)
    cdef _pump(self, double now)
    @cython.locals(n=cython.longlong, left=cython.longlong, k=cython.longlong, c=_Chunk)
    cdef tuple _take_piece(self, long long limit)
    @cython.locals(got=cython.longlong)
    cdef bint _response_complete(self, expected, double now)
    cdef double _quiet_period(self)
    cdef _maybe_end(self, double now)
    cdef bint _last_response_done(self, double now)
    cdef bint _lingered(self, double now)
    cdef bint _waiting_on_sut(self)
    cdef _send_syn(self, double now)
    @cython.locals(sent=_Sent, psum=cython.longlong)
    cdef _send_new(self, data, int flags, double now, ts_val)
    cdef _retransmit(self, _Sent sent)
    cdef _on_rto(self, double now)
    cdef _flush_request_run(self, long long off, long long length)
    cdef _stop_timers(self)
    cdef long long _wire(self, long long off)
    cdef _send(self, long long seq, int flags, payload=*, long long psum=*)
    cdef _emit_raw(self, long long seq, long long ack, int flags)
    cdef bytes _build(self, long long seq, long long ack, int flags, long long window, options, payload, long long psum)
    cdef bint _client_done(self)

cdef int _DATA, _FIN, _RST

# Enum members as C globals (see the note in the .py).
cdef object _CAPTURE_GAP, _IDLE_TIMEOUT, _NOT_ESTABLISHED, _SUT_RESET, _TOO_MANY_RECONNECTS, _CLOSING, _ESTABLISHED, _IDLE, _SYN_SENT, _CLIENT, _SUT, _ABORT, _FINISH, _RECONNECT, _SEND_FIN, _SEND_SYN, _SYN_ACK
