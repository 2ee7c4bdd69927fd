"""Hypothesis: whatever the sizes, MSS, loss and reordering, the SUT receives exactly the
captured client stream and the translator reports every response byte exactly once."""

from __future__ import annotations

import itertools
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tcpsim import Link, Script, capture, make_pair, response_bytes

from pytest_tcpcopy.tcp import Aborted, Closed, ResponseData, TranslatorConfig

sizes = st.lists(st.tuples(st.integers(1, 6000), st.integers(1, 20000)), min_size=1, max_size=6)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    exchanges=sizes,
    server_mss=st.integers(200, 1460),
    capture_mss=st.sampled_from([536, 1448, 4000]),
    isn=st.integers(0, 2**32 - 1),
    server_isn=st.integers(0, 2**32 - 1),
    loss_seed=st.integers(0, 2**16),
    loss_rate=st.sampled_from([0.0, 0.05, 0.2]),
    reorder=st.booleans(),
    timestamps=st.booleans(),
    pipeline=st.booleans(),
    mid_stream=st.booleans(),
)
def test_stream_delivered_and_responses_reported(
    exchanges, server_mss, capture_mss, isn, server_isn, loss_seed, loss_rate, reorder,
    timestamps, pipeline, mid_stream,
):
    reqs = [bytes([65 + i % 26]) * n for i, (n, _) in enumerate(exchanges)]
    resps = [bytes([97 + i % 26]) * n for i, (_, n) in enumerate(exchanges)]
    config = TranslatorConfig(pipeline=pipeline, capture_payload=True)
    t, s = make_pair(Script([len(r) for r in reqs], resps), config,
                     mss=server_mss, isn=server_isn)
    rng_in, rng_out = random.Random(loss_seed), random.Random(loss_seed + 1)
    # Losses only early on, so that every session can finish; and never of a retransmitted SYN,
    # or losing every attempt (0.2 ** 4) rightly ends the session as not established.
    syns = itertools.count()

    def drop_to_server(i: int, pkt: bytes) -> bool:
        if pkt[33] & 0x02 and next(syns) > 0:  # TCP flags of a 20-byte IPv4 header: SYN
            return False
        return i < 80 and rng_in.random() < loss_rate

    link = Link(t, s, drop_to_server=drop_to_server,
                reorder_to_translator=reorder, payload_reports=True)
    s.drop_out = lambda seq, n, flags: len(s.sent_payload) < 60000 and rng_out.random() < loss_rate
    link.run(capture(reqs, [len(r) for r in resps], isn=isn, mss=capture_mss,
                     server_isn=server_isn, timestamps=timestamps, syn=not mid_stream))
    assert s.errors == []
    assert bytes(s.received) == b"".join(reqs)
    spans = sorted(response_bytes(link.events).items())
    assert sum(n for _, n in spans) == len(s.sent_payload)
    assert all(a + n == b for (a, n), (b, _) in itertools.pairwise(spans))
    data = b"".join(e.data for e in sorted(
        (e for e in link.events if isinstance(e, ResponseData)), key=lambda e: e.offset))
    assert data == bytes(s.sent_payload)
    assert not any(isinstance(e, Aborted) for e in link.events)
    assert isinstance(link.events[-1], Closed) and t.finished
