# Compiled by setup.py when Cython is present; the .py beside it is the source and runs as is without it.
