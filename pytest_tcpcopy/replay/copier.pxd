# C types of the module beside it, for Cython (speedups.py lists the modules it compiles).
from pytest_tcpcopy.replay.engine cimport ReplayEngine

cpdef bint _run(reader, ReplayEngine engine, sender, intercept, options, notes, progress)
cpdef bint _may_feed(ReplayEngine engine)
