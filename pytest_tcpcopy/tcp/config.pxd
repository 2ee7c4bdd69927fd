# Compiled by setup.py when Cython is present; the .py beside it is the source and runs as is without it.
cdef class TranslatorConfig:
    cdef readonly object pipeline, mss, rto, establish_timeout, idle_timeout, response_timeout
    cdef readonly object quiet_floor, capture_payload, max_reconnects, close_linger
