"""The intercept: runs in the SUT's network namespace, queues the SUT's segments to replayed clients
via NFQUEUE (rules.py, queue.py), routes each to the copier that registered its 4-tuple (routing.py)
over the channel (server.py), and drops it, so nothing addressed to a replayed client leaves.
"""
