"""The streaming judge in memory: a capture of many sessions indexed without keeping its streams,
results judged as they arrive with bounded buffers, amplify copies joined, and the problems read
from the copier's results (no replay: captures written by hand, results built by hand)."""

from __future__ import annotations

import gc
import random
import struct
import tracemalloc
from pathlib import Path

import pytest

from pytest_tcpcopy.baselines import strategy_for
from pytest_tcpcopy.capture import open_capture
from pytest_tcpcopy.compare import Cause, ComparisonStatus, DiffConfig
from pytest_tcpcopy.flows.assembler import assemble_sessions
from pytest_tcpcopy.flows.session import CapturedSession
from pytest_tcpcopy.judging.problems import SutDeath, first_unanswered, replay_problems
from pytest_tcpcopy.judging.stream import StreamingJudge
from pytest_tcpcopy.judging.verdicts import KEEP_ALL, RunVerdicts
from pytest_tcpcopy.model import CaptureIndex, ReplayRun, index_capture, peak_concurrency
from pytest_tcpcopy.replay.results import ExchangeTiming, Outcome, ReplayResult, SessionResult
from pytest_tcpcopy.runner import MIN_MAX_SESSIONS, copier_settings, max_sessions
from pytest_tcpcopy.settings import Settings

SAME, DIFFERENT, NOT_COMPARABLE = ComparisonStatus.SAME, ComparisonStatus.DIFFERENT, ComparisonStatus.NOT_COMPARABLE
_RECORD = struct.Struct("<IIII")
_ETHER = b"\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02\x08\x00"
SERVER = bytes([10, 0, 0, 2])


def _segment(src: bytes, dst: bytes, sport: int, dport: int, seq: int, ack: int, flags: int, payload: bytes) -> bytes:
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40 + len(payload), 0, 0, 64, 6, 0, src, dst)
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0)
    return _ETHER + ip + tcp + payload


def http_capture(path: Path, sessions: int, *, overlap: int = 1) -> Path:
    """``sessions`` connections of one GET /p?s=N each, answered 200 with a small body and closed;
    ``overlap`` of them open at once (one after the other when 1). Written by hand, fast."""
    records = []
    syn, fin, ack, psh = 0x02, 0x01, 0x10, 0x08
    for n in range(sessions):
        client = bytes([10, 1, (n >> 8) & 0xFF, 1 + n % 250])
        port = 20000 + n % 40000
        request = f"GET /p?s={n} HTTP/1.1\r\nHost: svc\r\n\r\n".encode()
        body = b'{"n": %d}' % n
        response = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        c, s = 1000, 5000
        t0 = 1_700_000_000 + (n // overlap) * 0.01
        flow = [
            (client, SERVER, port, 80, c, 0, syn, b""),
            (SERVER, client, 80, port, s, c + 1, syn | ack, b""),
            (client, SERVER, port, 80, c + 1, s + 1, ack, b""),
            (client, SERVER, port, 80, c + 1, s + 1, psh | ack, request),
            (SERVER, client, 80, port, s + 1, c + 1 + len(request), psh | ack, response),
            (client, SERVER, port, 80, c + 1 + len(request), s + 1 + len(response), fin | ack, b""),
            (SERVER, client, 80, port, s + 1 + len(response), c + 2 + len(request), fin | ack, b""),
        ]
        for k, fields in enumerate(flow):
            frame = _segment(*fields)
            ts = t0 + k * 0.001
            records.append((ts, frame))
    records.sort(key=lambda r: r[0])
    with open(path, "wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for ts, frame in records:
            sec = int(ts)
            out.write(_RECORD.pack(sec, round((ts - sec) * 1e6) % 1_000_000, len(frame), len(frame)) + frame)
    return path


def answered(session: CapturedSession, copy: int = 0, body: bytes | None = None) -> SessionResult:
    """The SUT answering ``session`` as production did (with ``body`` instead, when given)."""
    response = session.server_stream.data()
    if body is not None:
        head, _, _ = response.partition(b"\r\n\r\n")
        head = head.replace(b"Content-Length: ", b"X-Old-Length: ")
        response = head + b"\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    result = SessionResult(session.index, copy, str(session.client), "", "", Outcome.COMPLETE, "closed by client")
    result.exchanges.append(ExchangeTiming(0, len(session.client_stream.data()), 0.0, response_bytes=len(response),
                                           response_end="framing"))  # fmt: skip
    result.response_chunks[0] = response
    return result


def captured(path: Path) -> list[CapturedSession]:
    with open_capture(path) as reader:
        return sorted(assemble_sessions(reader), key=lambda s: s.index)


def judge_of(path: Path, settings: Settings, suts=("candidate",)) -> tuple[StreamingJudge, ReplayRun]:
    index = index_capture(path, settings, refs=False)
    run = ReplayRun(index, settings, ReplayResult([], 0.0), verdicts=RunVerdicts(per_exchange=True))
    return StreamingJudge(run, strategy_for(settings), DiffConfig(), list(suts)), run


def _holds(obj: object, kinds: tuple[type, ...], seen: set[int]) -> bool:
    """Whether ``obj`` reaches an object of ``kinds`` (through containers and attributes)."""
    if id(obj) in seen:
        return False
    seen.add(id(obj))
    if isinstance(obj, kinds):
        return True
    return any(_holds(child, kinds, seen) for child in gc.get_referents(obj) if not isinstance(child, type))


def test_the_index_of_many_sessions_keeps_no_stream_bytes(tmp_path):
    path = http_capture(tmp_path / "many.pcap", 20_000, overlap=4)
    index_capture(path, Settings(), refs=False)  # the reader's caches (bounded) filled
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    index = index_capture(path, Settings(), refs=False)
    gc.collect()
    kept = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert (index.sessions, index.exchanges, index.requests) == (20_000, 20_000, 20_000)
    assert index.selected == range(20_000) and index.everything
    assert index.endpoints == {"GET /p?s={n}": 20_000} and index.refs is None
    assert index.peak_concurrency == 4
    assert kept < 256 * 1024, kept  # counts and a few small values: nothing per session
    assert not _holds(index, (bytes, bytearray, CapturedSession), set())


def test_exchange_items_keep_one_small_reference_per_exchange(tmp_path):
    index = index_capture(http_capture(tmp_path / "few.pcap", 30), Settings())
    assert [ref.name for ref in index.items()[:2]] == ["s0000-GET /p", "s0001-GET /p"]
    assert {ref.endpoint for ref in index.items()} == {"GET /p?s={n}"}
    assert not _holds(index, (bytes, bytearray, CapturedSession), set())


def test_results_are_judged_as_they_arrive_holding_only_the_reordering_window(tmp_path):
    path = http_capture(tmp_path / "many.pcap", 3000, overlap=8)
    sessions = captured(path)
    judge, run = judge_of(path, Settings())
    order = list(range(len(sessions)))
    rng = random.Random(7)
    for start in range(0, len(order), 40):  # results end out of order within a window of 40
        window = order[start : start + 40]
        rng.shuffle(window)
        order[start : start + 40] = window
    for count, n in enumerate(order, 1):
        judge.on_session("candidate", answered(sessions[n]))
        assert judge.sessions_judged == count  # judged on arrival, not at the end
    judge.finish()
    assert run.verdicts.counts[SAME] == 3000 and run.verdicts.total == 3000
    assert judge.peak_held <= 2 * 40 + 8  # captured sessions read ahead of their results
    assert judge.peak_pending == 1  # a single SUT at amplify 1: every result completes its session
    assert len(run.comparisons) == KEEP_ALL  # the first comparisons whole, none after


def test_amplify_copies_are_joined_and_a_differing_copy_represents_the_exchange(tmp_path):
    path = http_capture(tmp_path / "two.pcap", 2)
    first, second = captured(path)
    judge, run = judge_of(path, Settings().with_overrides({"amplify": 2}, "test"))
    judge.on_session("candidate", answered(first, 0))
    assert judge.sessions_judged == 0  # its other copy is still to come
    judge.on_session("candidate", answered(first, 1, body=b'{"n": -1}'))
    judge.on_session("candidate", answered(second, 1))
    judge.on_session("candidate", answered(second, 0))
    judge.finish()
    verdict = run.verdicts.item(0, 0)
    assert verdict.status is DIFFERENT and verdict.copies == (1,)
    assert run.verdicts.item(1, 0).status is SAME


def test_a_dead_sut_makes_unfinished_sessions_not_comparable_with_its_log_tail(tmp_path):
    path = http_capture(tmp_path / "two.pcap", 2)
    first, second = captured(path)
    judge, run = judge_of(path, Settings())
    judge.set_death_probe(lambda sut: SutDeath("the SUT 'candidate' stopped during the replay", "oom: killed\n"))
    judge.on_session("candidate", answered(first))
    reset = answered(second, body=b"")
    reset.outcome, reset.reason = Outcome.SUT_RESET, "reset"
    reset.exchanges[0].response_end = "sut_close"
    judge.on_session("candidate", reset)
    judge.finish()
    assert run.verdicts.item(0, 0).status is SAME
    dead = run.verdicts.item(1, 0)
    assert dead.status is NOT_COMPARABLE
    assert dead.message == "SUT died: the SUT 'candidate' stopped during the replay"
    [finding] = [f for f in run.verdicts.findings.findings() if f.key.status is NOT_COMPARABLE]
    assert finding.examples[0].cause.log_tail == "oom: killed"


def test_problems_read_from_the_copiers_result():
    result = SessionResult(3, 0, "", "", "", Outcome.TIMEOUT, "SUT too slow: 40 of 79 bytes after 5.0 s")
    result.exchanges = [ExchangeTiming(0, 30, 0.0, response_end="framing"),
                        ExchangeTiming(30, 30, 0.1, response_end="timeout", cut="SUT too slow: 40 of 79 bytes after 5.0 s"),
                        ]  # fmt: skip
    cut, outcome = replay_problems(result)
    assert (cut.cause, cut.detail, cut.request_offset) == (Cause.SUT_TOO_SLOW, "40 of 79 bytes after 5.0 s", 30)
    assert (outcome.cause, outcome.request_offset) == (Cause.SUT_TOO_SLOW, 30)
    died, *_ = replay_problems(result, SutDeath("it stopped", "tail"))
    assert (died.cause, died.request_offset, died.log_tail) == (Cause.SUT_DIED, 30, "tail")
    assert replay_problems(SessionResult(0, 0, "", "", "", Outcome.COMPLETE)) == []
    never = SessionResult(0, 0, "", "", "", Outcome.NOT_REPLAYED, "the replay stopped: intercept lost")
    assert [(p.cause, p.request_offset) for p in replay_problems(never)] == [(Cause.NOT_REPLAYED, None)]
    closed = SessionResult(0, 0, "", "", "", Outcome.SUT_RESET, "reset")
    closed.exchanges = [ExchangeTiming(0, 30, 0.0, response_end="sut_close")]
    assert first_unanswered(closed) == 0  # a response the SUT's close ended, in a failed session: not whole


def test_the_default_bound_on_sessions_follows_the_capture(tmp_path):
    index = index_capture(http_capture(tmp_path / "wide.pcap", 400, overlap=100), Settings())
    assert index.peak_concurrency == 100
    assert max_sessions(Settings(), index) == 100
    assert max_sessions(Settings().with_overrides({"amplify": 3}, "t"), index) == 300
    assert max_sessions(Settings().with_overrides({"max_sessions": 7}, "t"), index) == 7
    narrow = CaptureIndex(Path("x.pcap"), 1, range(1), 1, {}, peak_concurrency=1)
    assert max_sessions(Settings(), narrow) == MIN_MAX_SESSIONS
    settings = copier_settings(Settings().with_overrides({"response_timeout": 2.5}, "t"), index)
    assert (settings.max_sessions, settings.response_timeout, settings.sessions) == (100, 2.5, None)


@pytest.mark.parametrize(("spans", "peak"), [([], 0), ([(0, 1)], 1), ([(0, 1), (1, 2)], 2), ([(0, 1), (2, 3)], 1),
                                             ([(0, 10), (1, 2), (3, 4), (5, 9), (6, 7)], 3)])  # fmt: skip
def test_peak_concurrency(spans, peak):
    from array import array

    assert peak_concurrency(array("d", [a for a, _ in spans]), array("d", [b for _, b in spans])) == peak
