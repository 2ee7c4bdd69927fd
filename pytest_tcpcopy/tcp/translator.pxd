# C types of the module beside it, for Cython (speedups.py lists the modules it compiles).
from pytest_tcpcopy.kernel.codecs cimport SutSegment, partial_sum
from pytest_tcpcopy.kernel.packet cimport Packet
from pytest_tcpcopy.tcp._state cimport SessionStateMachine
from pytest_tcpcopy.tcp.config cimport TranslatorConfig as Config  # the .py imports the name for its callers
from pytest_tcpcopy.tcp.cursor cimport CapturedStream
from pytest_tcpcopy.tcp.events cimport SessionCounters
from pytest_tcpcopy.tcp.gate cimport RequestGate
from pytest_tcpcopy.tcp.handshake cimport Handshake
from pytest_tcpcopy.tcp.output cimport SessionOutput
from pytest_tcpcopy.tcp.receiver cimport Receiver
from pytest_tcpcopy.tcp.recovery cimport Recovery, Sent
from pytest_tcpcopy.tcp.seq cimport seq_add, unwrap

# Imported constants, as C ints.
cdef int ACK, FIN, PSH, RST, SYN, DATA, FIN_MARK, ACCEPTED, STRAY, WAIT_NOTHING, WAIT_RESPONSE, WAIT_WINDOW

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
    cdef public SessionCounters counters
    cdef public Config config
    cdef public object client, copy, session_id, target

    cpdef next_timer(self)
    cpdef bint feed_client(self, Packet pkt, double now)
    cpdef end_of_capture(self, double now)
    cpdef feed_sut(self, SutSegment seg, double now)
    cpdef on_timer(self, double now)
    cpdef list packets_to_send(self)
    cpdef list events(self)
    cdef _on_syn_sent_segment(self, SutSegment seg, double now)
    cdef _on_sut_rst(self, double now)
    cdef _settle(self)
    cdef _pump(self, double now)
    cdef _maybe_end(self, double now)
    cdef _send_syn(self, double now)
    cdef _send_new(self, data, int flags, double now, ts_val)
    cdef _retransmit(self, Sent sent)
    cdef _on_rto(self, double now)
    cdef _flush_request_run(self, long long off, long long length)
    cdef _send(self, long long seq, int flags, payload=*, long long psum=*)

cpdef _earlier(a, b)
