# C types of the module beside it, for Cython (speedups.py lists the modules it compiles).

# Per queued segment: the budget and the last packet id as C fields.
cdef class _Budgeted:
    cdef public long left
    cdef public object recv_from

cdef class ResponseQueue:
    cdef public object queue_num
    cdef object _deliver, _nfq, _sock, _verdict_head
    cdef _Budgeted _reader
    cdef long long _last_id
