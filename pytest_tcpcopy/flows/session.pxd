# C types of the module beside it, for Cython (speedups.py lists the modules it compiles).
from pytest_tcpcopy.flows.stream cimport ByteStream

cdef class CapturedSession:
    cdef public object client, server, client_isn, server_isn, close
    cdef public list client_segments
    cdef public ByteStream client_stream, server_stream
    cdef public long long index, packets, retransmitted, out_of_order, fins
    cdef public double first_ts, last_ts
    cdef public bint handshake, released
