# Compiled by setup.py when Cython is present; the .py beside it is the source and runs as is without it.

# Per queued segment: the budget and the last packet id as C fields.
cdef class _Budgeted:
    cdef public long left
    cdef public object recv_from

cdef class ResponseQueue:
    cdef public object queue_num
    cdef object _deliver, _nfq, _sock, _verdict_head
    cdef _Budgeted _reader
    cdef long long _last_id
