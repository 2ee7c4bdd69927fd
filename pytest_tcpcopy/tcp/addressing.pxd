# Compiled by setup.py when Cython is present; the .py beside it is the source and runs as is without it.
# No C types: compiled, the per-session lookups run without the interpreter's frames.
