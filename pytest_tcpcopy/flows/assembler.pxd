# Compiled by setup.py when Cython is present; the .py beside it is the source and runs as is without it.
cimport cython
from pytest_tcpcopy.capture.packet cimport Packet
from pytest_tcpcopy.flows.session cimport CapturedSession
from pytest_tcpcopy.flows.stream cimport ByteStream

# TCP flag bits and add() verdicts as C ints: `flags & SYN` stays in C.
cdef int ACK, FIN, RST, SYN, _CONTROL, OUT_OF_ORDER, RETRANSMITTED

cdef class FlowAssembler:
    cdef object _server_ports, _closing
    cdef dict _routes
    cdef list _finished
    cdef bint _keep, _keep_segments, _server_coverage
    cdef double _linger
    cdef long long _created, _max_bytes, _max_routes

    cpdef bint has_finished(self)
    @cython.locals(session=CapturedSession, stream=ByteStream, from_client=bint, flags=int, ts=double,
                   payload_len=cython.longlong, kind=int, sport=cython.longlong, dport=cython.longlong)
    cpdef feed(self, Packet pkt)
    cdef _route_new(self, Packet pkt, route)
    @staticmethod
    cdef bint _is_new_connection(CapturedSession session, bint from_client, seq)
    cdef _from_client(self, Packet pkt)
    cdef _expire(self, double now)
    @cython.locals(route=tuple)
    cdef _release(self, CapturedSession session)
    cdef _control(self, CapturedSession session, bint from_client, int flags, seq, long long payload_len,
                  double ts)
