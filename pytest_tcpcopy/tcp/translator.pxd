# C types for translator.py when compiled (see setup.py): the parts as C fields, called in C.
cimport cython
from pytest_tcpcopy.capture.packet cimport Packet
from pytest_tcpcopy.tcp.checksum cimport partial_sum
from pytest_tcpcopy.tcp.config cimport TranslatorConfig as Config  # aliased: the .py exports the name
from pytest_tcpcopy.tcp.cursor cimport CapturedStream, Chunk
from pytest_tcpcopy.tcp.events cimport RequestSent, SessionCounters
from pytest_tcpcopy.tcp.gate cimport RequestGate
from pytest_tcpcopy.tcp.handshake cimport Handshake
from pytest_tcpcopy.tcp.output cimport SessionOutput
from pytest_tcpcopy.tcp.receiver cimport Receiver
from pytest_tcpcopy.tcp.recovery cimport Recovery, Sent
from pytest_tcpcopy.tcp.seq cimport seq_add, unwrap
from pytest_tcpcopy.tcp.wire cimport SutSegment
from pytest_tcpcopy.tcp._state cimport SessionStateMachine

cdef class SessionTranslator:
    cdef CapturedStream _cap
    cdef RequestGate _gate
    cdef Handshake _hs
    cdef double _last_progress, _idle_timeout, _close_linger
    cdef SessionOutput _out
    cdef bint _pipeline
    cdef object _pump_at
    cdef Receiver _rx
    cdef SessionStateMachine _sm
    cdef Recovery _tx
    cdef public Config config
    cdef public SessionCounters counters
    cdef public object client, copy, session_id, target

    @cython.locals(sm=SessionStateMachine, tx=Recovery, waiting=cython.int)
    cpdef next_timer(self)
    cpdef bint feed_client(self, Packet pkt, double now)
    @cython.locals(sm=SessionStateMachine)
    cpdef end_of_capture(self, double now)
    @cython.locals(flags=cython.int, sm=SessionStateMachine, rx=Receiver, tx=Recovery,
                   ack=cython.longlong, una=cython.longlong, resend=Sent)
    cpdef feed_sut(self, SutSegment seg, double now)
    @cython.locals(sm=SessionStateMachine, gate=RequestGate)
    cpdef on_timer(self, double now)
    cpdef list packets_to_send(self)
    cpdef list events(self)
    @cython.locals(hs=Handshake, answer=cython.int)
    cdef _on_syn_sent_segment(self, SutSegment seg, double now)
    cdef _settle(self)
    @cython.locals(sm=SessionStateMachine, cap=CapturedStream, tx=Recovery, run_off=cython.longlong,
                   run_len=cython.longlong, room=cython.longlong, c=Chunk, new=cython.bint)
    cdef _pump(self, double now)
    @cython.locals(cap=CapturedStream, tx=Recovery, sm=SessionStateMachine)
    cdef _maybe_end(self, double now)
    cdef _send_syn(self, double now)
    @cython.locals(sent=Sent, psum=cython.longlong)
    cdef _send_new(self, data, int flags, double now, ts_val)
    cdef _retransmit(self, Sent sent)
    @cython.locals(tx=Recovery, head=Sent)
    cdef _on_rto(self, double now)
    cdef _flush_request_run(self, long long off, long long length)
    @cython.locals(rx=Receiver, ack=cython.longlong)
    cdef _send(self, long long seq, int flags, payload=*, long long psum=*)

cpdef _earlier(a, b)

# Module constants as C globals (see the note in the .py).
cdef object _CLOSING, _ESTABLISHED, _IDLE, _SYN_SENT, _CLIENT, _SUT
cdef int _WAIT_NOTHING, _WAIT_RESPONSE, _WAIT_WINDOW
