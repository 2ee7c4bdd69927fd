# Compiled by setup.py when Cython is present; the .py beside it is the source and runs as is without it.
cimport cython
from pytest_tcpcopy.replay.engine cimport ReplayEngine

# The engine's inputs as C calls.
@cython.locals(batch=list, at=Py_ssize_t, fed=Py_ssize_t, batch_size=Py_ssize_t, now=double, failed=bint)
cpdef bint _run(reader, ReplayEngine engine, sender, intercept, options, notes, progress)
cpdef bint _may_feed(ReplayEngine engine)
