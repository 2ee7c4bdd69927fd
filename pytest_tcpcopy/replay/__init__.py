"""The copier: the sans-IO replay engine (engine), its I/O shell (copier, rawsend) and the
per-session results it produces (results)."""
