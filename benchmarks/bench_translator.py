"""Throughput of the sans-IO session translator on one core.

Each workload runs once through the translator and the in-memory TCP server of the unit tests
(tests/unit/tcp/tcpsim.py) on a simulated clock, recording every call made on the translator.
The recorded calls are then replayed into fresh translators and only that is timed, so the
figures are the translator's own work (parse_sut_segment included, the simulated server
excluded). The translator is deterministic, so the replay produces the same packets.

    python benchmarks/bench_translator.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "unit" / "tcp"))

from tcpsim import CLIENT, TARGET, Link, Script, SimServer, capture

from pytest_tcpcopy.tcp import SessionTranslator, TranslatorConfig, parse_sut_segment


class Recorder(SessionTranslator):
    """A translator that logs the calls made on it, for replay."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.log: list[tuple] = []

    def feed_client(self, pkt, now):
        self.log.append(("c", pkt, now))
        super().feed_client(pkt, now)

    def feed_sut(self, seg, now):
        self.log.append(("s", None, now))  # the raw bytes come from Link.sut_log
        super().feed_sut(seg, now)

    def on_timer(self, now):
        self.log.append(("t", None, now))
        super().on_timer(now)

    def end_of_capture(self, now):
        self.log.append(("e", None, now))
        super().end_of_capture(now)

    def packets_to_send(self):
        self.log.append(("p", None, 0.0))
        return super().packets_to_send()


def record(reqs: list[bytes], resps: list[bytes], capture_payload: bool) -> list[tuple]:
    """Run one session against the simulated server; return its calls, SUT bytes attached."""
    t = Recorder(TranslatorConfig(capture_payload=capture_payload), CLIENT, TARGET, session_id=1)
    s = SimServer(TARGET, Script([len(r) for r in reqs], resps))
    link = Link(t, s, payload_reports=capture_payload, sut_log=[])
    link.run(capture(reqs, [len(r) for r in resps]))
    assert bytes(s.received) == b"".join(reqs) and not s.errors and t.finished
    raw = iter(link.sut_log)
    return [(kind, next(raw) if kind == "s" else arg, now) for kind, arg, now in t.log]


def replay(log: list[tuple], sessions: int, capture_payload: bool) -> tuple[float, int, int]:
    config = TranslatorConfig(capture_payload=capture_payload)
    ins = outs = 0
    start = time.perf_counter()
    for sid in range(sessions):
        t = SessionTranslator(config, CLIENT, TARGET, session_id=sid)
        feed_client, feed_sut, on_timer = t.feed_client, t.feed_sut, t.on_timer
        drain = t.packets_to_send
        for kind, arg, now in log:
            if kind == "s":
                feed_sut(parse_sut_segment(arg), now)
                ins += 1
            elif kind == "c":
                feed_client(arg, now)
                ins += 1
            elif kind == "p":
                outs += len(drain())
            elif kind == "t":
                on_timer(now)
            else:
                t.end_of_capture(now)
        t.events()
    return time.perf_counter() - start, ins, outs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    workloads = {
        "keep-alive: 50 x (300 B request, 1 KB response), 40 sessions": (
            [b"G" * 300] * 50, [b"r" * 1000] * 50, 40, False),
        "bulk: 1 request, 2 MB response (header-only reports), 2 sessions": (
            [b"G" * 200], [b"b" * 2_000_000], 2, False),
        "bulk with response payloads: 1 request, 2 MB response, 2 sessions": (
            [b"G" * 200], [b"b" * 2_000_000], 2, True),
        "upload: 1 MB request, 100 B response, 4 sessions": (
            [b"U" * 1_000_000], [b"r" * 100], 4, False),
    }
    print(f"python {sys.version.split()[0]}, best of {args.repeat} runs, translator work only")
    for name, (reqs, resps, sessions, payload) in workloads.items():
        log = record(reqs, resps, payload)
        runs = [replay(log, sessions, payload) for _ in range(args.repeat)]
        best = min(runs, key=lambda r: r[0])
        secs, ins, outs = best
        med = statistics.median(r[0] for r in runs)
        print(f"{name}\n  {ins} segments in, {outs} packets out in {secs * 1000:.1f} ms "
              f"(median {med * 1000:.1f} ms): {(ins + outs) / secs / 1000:.0f}k segments/s "
              f"({ins / secs / 1000:.0f}k in/s, {outs / secs / 1000:.0f}k out/s)")


if __name__ == "__main__":
    main()
