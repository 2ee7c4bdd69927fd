# Compiled by setup.py when Cython is present; the .py beside it is the source and runs as is without it.
cdef class SessionCounters:
    cdef public long long bytes_sent, captured_duplicates, captured_out_of_order, dup_acks
    cdef public long long fast_retransmits, ignored_sut_segments, packets_sent, reconnects
    cdef public long long response_bytes, retransmits, rto_timeouts, sut_out_of_order
    cdef public long long sut_retransmits, sut_segments, window_probes
