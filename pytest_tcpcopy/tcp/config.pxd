# C types of the module beside it, for Cython (speedups.py lists the modules it compiles).
cdef class TranslatorConfig:
    cdef readonly object pipeline, mss, rto, establish_timeout, idle_timeout, response_timeout
    cdef readonly object quiet_floor, capture_payload, max_reconnects, close_linger
