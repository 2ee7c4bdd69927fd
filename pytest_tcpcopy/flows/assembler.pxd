# C types of the module beside it, for Cython (speedups.py lists the modules it compiles).
from pytest_tcpcopy.flows.session cimport CapturedSession
from pytest_tcpcopy.flows.stream cimport ByteStream
from pytest_tcpcopy.kernel.packet cimport Packet

# TCP flag bits and add() verdicts, as C ints.
cdef int ACK, FIN, RST, SYN, _CONTROL, OUT_OF_ORDER, RETRANSMITTED

cdef class FlowAssembler:
    cdef object _server_ports, _closing
    cdef dict _routes
    cdef list _finished
    cdef bint _keep, _keep_segments, _server_coverage
    cdef double _linger
    cdef long long _created, _max_bytes, _max_routes

    cpdef bint has_finished(self)
    cpdef feed(self, Packet pkt)
    cdef _add(self, CapturedSession session, bint from_client, Packet pkt)
    cdef _route_new(self, Packet pkt, route)
    cdef _from_client(self, Packet pkt)
    cdef _expire(self, double now)
    cdef _release(self, CapturedSession session)
    cdef _control(self, CapturedSession session, bint from_client, long long flags, long long seq,
                  long long payload_len, double ts)
    cdef bint _is_new_connection(self, CapturedSession session, bint from_client, long long seq)
