# C types of the module beside it, for Cython (speedups.py lists the modules it compiles).

# The events: frozen dataclasses in events.py, compiled as Cython dataclasses with C fields.
cdef class Event:
    pass

cdef class Established(Event):
    cdef readonly bint fake_syn

cdef class RequestSent(Event):
    cdef readonly long long offset, length

cdef class ResponseData(Event):
    cdef readonly long long offset, length
    cdef readonly object data

cdef class ResponseEnded(Event):
    cdef readonly object by
    cdef readonly long long received
    cdef readonly object expected

cdef class Reconnected(Event):
    cdef readonly long long attempt, resume_offset

cdef class Closed(Event):
    cdef readonly object by
    cdef readonly bint reset

cdef class Aborted(Event):
    cdef readonly object reason, detail

cdef class SessionCounters:
    cdef public long long bytes_sent, captured_duplicates, captured_out_of_order, dup_acks
    cdef public long long fast_retransmits, ignored_sut_segments, packets_sent, reconnects
    cdef public long long response_bytes, retransmits, rto_timeouts, sut_out_of_order
    cdef public long long sut_retransmits, sut_segments, window_probes
