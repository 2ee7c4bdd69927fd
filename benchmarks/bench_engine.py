"""The copier's user-space work per session, without the kernel, the SUT or the other CPU.

The replay benchmark (bench_replay.py) shares two CPUs between the copier, nginx, the intercept
and the kernel, so its figures move by +-30 % with whatever else the host runs. This one isolates
what the copier's own code costs: the capture reader, flow assembly, the engine and the
translators, as ``copier._run`` drives them.

It runs in two passes. The first replays the capture into the in-memory TCP servers of the unit
tests (tests/unit/tcp/tcpsim.py, one per replay client, answering each request segment with an
nginx-sized response) through a ReplayEngine, and logs every call the loop made on the engine
with its ``now``. The second pass replays that log into a fresh engine over a fresh reader of the
same capture, and only that is timed. The engine is deterministic for the same calls at the same
``now``, so every repetition does the same work: the minimum over the repetitions is the figure.

    python benchmarks/bench_engine.py [--capture short|keepalive|PATH] [--repeat 7] [--profile FILE]

For a figure free of the host's noise, count instructions: save the log once, then run only the
timed pass under callgrind (the total is the reader and engine plus a fixed start-up):

    python benchmarks/bench_engine.py --capture short --save-log /tmp/short.log
    valgrind --tool=callgrind python benchmarks/bench_engine.py --load-log /tmp/short.log --repeat 1
"""

from __future__ import annotations

import argparse
import cProfile
import pickle
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "unit" / "tcp"))

from shared_captures import bench_dir
from tcpsim import Script, SimServer

from pytest_tcpcopy import speedups
from pytest_tcpcopy.capture import open_capture
from pytest_tcpcopy.endpoint import Endpoint, parse_addr
from pytest_tcpcopy.replay.copier import _FEED_BATCH, replay_gc
from pytest_tcpcopy.replay.engine import ReplayEngine
from pytest_tcpcopy.tcp.addressing import ClientAllocator

TARGET = Endpoint(parse_addr("10.200.0.2"), 8080)
# nginx's answers in the benchmark rig, headers and the 987-byte file: as long as the captures
# show them ("Connection: keep-alive" is 5 bytes longer than "Connection: close").
RESPONSE_CLOSE = b"H" * 1220
RESPONSE_KEEP_ALIVE = b"H" * 1225

FEED, DONE, SUT, TURN = range(4)  # the kinds of logged calls


def new_engine() -> ReplayEngine:
    return ReplayEngine(TARGET, ClientAllocator().endpoint)


class AnsweringServer(SimServer):
    """A SimServer that answers every segment carrying request bytes with one response and,
    as nginx does, closes after answering a request that asked for it (Connection: close)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.segments_received = self.responses_answered = 0
        self.close_requested = False

    def _respond(self) -> None:
        while self.responses_answered < self.segments_received:
            self.responses_answered += 1
            self._queue_response(RESPONSE_CLOSE if self.close_requested else RESPONSE_KEEP_ALIVE)
            if self.close_requested:
                self.fin_queued = True

    def _on_data(self, s) -> None:
        if s.payload:
            self.segments_received += 1
            self.close_requested = b"connection: close" in s.payload.lower()
        super()._on_data(s)


def record(capture: Path) -> tuple[list[tuple], int]:
    """Replay ``capture`` into simulated servers; the engine calls the loop made, and the number
    of session copies that completed."""
    engine = new_engine()
    servers: dict[tuple[bytes, int], AnsweringServer] = {}
    log: list[tuple] = []

    def deliver(packets: list[bytes]) -> list[bytes]:
        answers: list[bytes] = []
        for raw in packets:
            key = (raw[12:16], int.from_bytes(raw[20:22], "big"))
            server = servers.get(key)
            if server is None:
                server = servers[key] = AnsweringServer(TARGET, Script([], []))
            server.receive(raw, time.monotonic())
            for pkt in server.out:
                answers.append(pkt[: 20 + (pkt[32] >> 4) * 4])  # header-only, as the intercept reports
            server.out.clear()
        return answers

    with replay_gc(), open_capture(capture) as reader:
        packets = iter(reader)
        pending = next(packets, None)
        done = False
        while True:
            now = time.monotonic()
            fed = 0
            while pending is not None and fed < _FEED_BATCH:
                engine.feed_capture(pending, now)
                log.append((FEED, now))
                pending = next(packets, None)
                fed += 1
            if pending is None and not done:
                engine.capture_done(now)
                log.append((DONE, now))
                done = True
            answers = deliver(turn(engine, now, log))
            while answers:  # the intercept's records, read before the next feed as the copier does
                now = time.monotonic()
                for rec in answers:
                    engine.feed_sut(rec, now)
                    log.append((SUT, rec, now))
                answers = deliver(turn(engine, now, log, timers=False))
            if engine.finished:
                break
    completed = sum(r.outcome.value == "complete" for r in engine.result(time.monotonic()).sessions)
    return log, completed


def turn(engine: ReplayEngine, now: float, log: list[tuple], *, timers: bool = True) -> list[bytes]:
    """One turn of the copier's loop: timers (unless it follows a read of records), the
    registrations and the packets to send."""
    if timers:
        engine.on_timer(now)
    engine.next_timer()
    engine.registrations()
    log.append((TURN, now, timers))
    return engine.packets_to_send()


def replay(capture: Path, log: list[tuple]) -> float:
    """Seconds the reader and a fresh engine take for the logged calls."""
    engine = new_engine()
    start = time.perf_counter()
    with replay_gc(), open_capture(capture) as reader:
        batches = reader.batches()  # as the copier reads them
        batch: list = []
        at = 0
        for call in log:
            kind = call[0]
            if kind == FEED:
                if at == len(batch):
                    batch, at = next(batches), 0
                engine.feed_capture(batch[at], call[1])
                at += 1
            elif kind == SUT:
                engine.feed_sut(call[1], call[2])
            elif kind == TURN:
                if call[2]:
                    engine.on_timer(call[1])
                engine.next_timer()
                engine.registrations()
                engine.packets_to_send()
            else:
                engine.capture_done(call[1])
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--capture", default="short", help="short, keepalive, or a capture file")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--profile", help="cProfile one timed repetition into this file")
    ap.add_argument("--save-log", help="record the engine calls into this file and stop")
    ap.add_argument("--load-log", help="time the engine calls recorded in this file (no recording pass)")
    args = ap.parse_args()
    capture = Path(args.capture)
    if args.capture in ("short", "keepalive"):
        capture = bench_dir() / f"{args.capture}.pcap.gz"

    if args.load_log:
        with open(args.load_log, "rb") as f:
            capture, log, completed = pickle.load(f)
    else:
        log, completed = record(capture)
    if args.save_log:
        with open(args.save_log, "wb") as f:
            pickle.dump((capture, log, completed), f)
        print(f"{len(log)} engine calls of {capture} saved in {args.save_log}")
        return
    if not completed:
        raise SystemExit("no session completed in the recording pass: nothing to time")
    print(f"{capture.name}: {completed} sessions completed in the recording pass, {len(log)} engine calls; "
          f"{len(speedups.compiled_modules())} of {len(speedups.compilable_modules())} hot-path modules compiled")
    if args.profile:
        prof = cProfile.Profile()
        prof.runcall(replay, capture, log)
        prof.dump_stats(args.profile)
    times = [replay(capture, log) for _ in range(args.repeat)]
    per = [t / completed * 1e6 for t in times]
    print(f"  us per session: min {min(per):.1f}  median {statistics.median(per):.1f}  "
          f"runs {' '.join(f'{p:.1f}' for p in per)}")


if __name__ == "__main__":
    main()
