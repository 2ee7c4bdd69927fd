"""The copier's I/O shell: capture file (or live packet source) in, raw packets out, intercept
records back in.

A single-threaded loop: feed the captured packets that pacing says are due, fire due timers, flush
registrations to the intercept(s) before the packets that need them, send, then wait on the
intercept channel until the next capture packet or timer is due. A live source is fed as its
packets arrive: its descriptors wait in the same selector as the intercept's. Every protocol
decision lives in ``ReplayEngine`` and the translators; this module only moves bytes and reads
the clock.

Reading the capture pauses while many sessions wait for a slot (memory), but never while every
live session waits for the capture itself: then nothing else could free a slot. A replay that
must stop early (its time limit, a lost intercept) stops the engine and reads the rest of the
capture without replaying it, so that every session is in the result (``not_replayed``).
"""

from __future__ import annotations

import contextlib
import os
import resource
import selectors
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field

from ..capture import open_capture
from ..channel.client import InterceptClient
from ..channel.protocol import Capability
from ..collector import rare_collections
from ..endpoint import Endpoint
from ..errors import EnvironmentProblem, UsageError
from ..live.source import PacketSource
from ..tcp.addressing import ClientAllocator
from ..tcp.config import TranslatorConfig
from ..tcp.pacing import CapturePacer
from .engine import ReplayEngine
from .rawsend import RawSender
from .results import ReplayResult, SessionResult

_FEED_BATCH = 256  # captured packets fed per loop turn, so SUT records are read in between
_MAX_WAITING = 20_000  # sessions buffered beyond max_active before reading the capture pauses
_HEARTBEAT = 1.0
_SOURCE_POLL = 0.1  # how often a live source is asked whether it has finished
_FROM_SUT, _FROM_SOURCE = "sut", "source"  # selector keys' data in the live loop
# Every session allocates a few dozen objects that live for its lifetime (milliseconds to
# seconds); with the default young-generation threshold (700) they are traversed by several
# collections before they die: 10-20% of the copier's CPU. The hot path makes no reference
# cycles, so collections can be rare (restored when the replay ends); and what exists before the
# replay (modules, the interpreter's own objects) is frozen out of the collections that do run.
_GC_YOUNG_THRESHOLD = 200_000


@dataclass(frozen=True, slots=True)
class ReplayOptions:
    target: Endpoint
    intercepts: Sequence[Endpoint | str]
    server_ports: Collection[int] = ()
    speed: float | None = None  # None: as fast as the SUT takes it; 1.0: the capture's own pace
    amplify: int = 1
    max_active: int = 10_000
    client_network: str = "198.18.0.0/15"
    translator: TranslatorConfig = field(default_factory=TranslatorConfig)
    max_duration: float = 3600.0  # a replay always stops by itself
    only_sessions: Collection[int] | None = None  # captured session indexes to replay; None: all
    # Handed each session copy as it ends, which the result then no longer holds; None: the
    # result holds every copy.
    on_session: Callable[[SessionResult], None] | None = None


def replay_capture(
    capture: str | os.PathLike,
    options: ReplayOptions,
    *,
    progress: Callable[[ReplayEngine], None] | None = None,
) -> ReplayResult:
    """Replay every TCP session of ``capture`` into ``options.target``; return per-session results."""

    def loop(engine, sender, intercept, notes) -> bool:
        try:
            return _run(reader, engine, sender, intercept, options, notes, progress)
        finally:
            if reader.stats.truncated_tail:
                notes.append(f"capture ends mid-record: {reader.stats.truncated_tail}")

    with open_capture(capture) as reader:
        return _replay(options, loop)


def replay_source(
    source: PacketSource,
    options: ReplayOptions,
    *,
    progress: Callable[[ReplayEngine], None] | None = None,
) -> ReplayResult:
    """Replay the TCP sessions of live traffic as its packets arrive (arrival is the pace;
    ``options.speed`` must be None); the sessions still open when ``source`` is finished are
    played to their end, within ``options.max_duration``. The caller closes ``source``."""
    if options.speed is not None:
        raise UsageError("live traffic is replayed as it arrives: a speed applies to capture files only")

    def loop(engine, sender, intercept, notes) -> bool:
        return _run_live(source, engine, sender, intercept, options, notes, progress)

    return _replay(options, loop)


def _replay(options: ReplayOptions, loop: Callable[..., bool]) -> ReplayResult:
    """Set up the engine, raw sender and intercept channel, run ``loop(engine, sender,
    intercept, notes)`` (True when a failure stopped it) and return the engine's result."""
    allocator = ClientAllocator(options.amplify, options.client_network)
    engine = ReplayEngine(
        options.target,
        allocator.endpoint,
        config=options.translator,
        server_ports=options.server_ports,
        amplify=options.amplify,
        max_active=options.max_active,
        only_sessions=options.only_sessions,
        speed=options.speed,
    )
    capabilities = Capability.RESPONSE_PAYLOAD if options.translator.capture_payload else Capability.NONE
    notes: list[str] = []
    with RawSender(options.target) as sender, InterceptClient(
        options.intercepts, capabilities=capabilities
    ) as intercept:
        cpu_before = resource.getrusage(resource.RUSAGE_SELF)
        failed = False
        try:
            with replay_gc():
                failed = loop(engine, sender, intercept, notes)
        finally:
            cpu_after = resource.getrusage(resource.RUSAGE_SELF)
            if sender.send_errors:
                notes.append(f"{sender.send_errors} packets could not be sent (kernel buffers full)")
        result = engine.result(time.monotonic(), notes)
    result.stopped_by_failure = bool(failed)
    result.cpu = (cpu_after.ru_utime - cpu_before.ru_utime, cpu_after.ru_stime - cpu_before.ru_stime)
    return result


def replay_gc() -> contextlib.AbstractContextManager[None]:
    """The garbage collector's settings for the duration of a replay (see _GC_YOUNG_THRESHOLD)."""
    return rare_collections(_GC_YOUNG_THRESHOLD, freeze_survivors=True)


class _Loop:
    """What both loops share: timers, sending, the time limit, heartbeats and progress, and
    waiting on the selector with the intercept's records handled as they come."""

    def __init__(self, engine, sender, intercept, options, notes, progress) -> None:
        self.engine, self.sender, self.intercept = engine, sender, intercept
        self.notes, self.progress = notes, progress
        self.on_session = options.on_session
        self.selector = selectors.DefaultSelector()
        for fd in intercept.filenos():
            self.selector.register(fd, selectors.EVENT_READ, _FROM_SUT)
        self.start = time.monotonic()
        self.stop_at = self.start + options.max_duration
        self.max_duration = options.max_duration
        self.next_heartbeat = self.start + _HEARTBEAT

    def turn(self, now: float) -> bool:
        """Fire due timers and send; False once the replay is over (finished or out of time)."""
        engine = self.engine
        engine.on_timer(now)
        _send(engine, self.sender, self.intercept)
        if self.on_session is not None:
            for result in engine.take_finished():
                self.on_session(result)
        if engine.finished:
            return False
        if now >= self.stop_at:
            self.notes.append(f"replay stopped at its time limit ({self.max_duration:g} s)")
            engine.stop(f"the replay reached its time limit ({self.max_duration:g} s)", now)
            return False
        if now >= self.next_heartbeat:
            self.intercept.heartbeat()
            self.next_heartbeat = now + _HEARTBEAT
            if self.progress is not None:
                self.progress(engine)
        return True

    def wait(self, wake: float | None) -> list:
        """Sleep until ``wake`` (or the next timer or heartbeat, if sooner) or until a descriptor
        is ready; the intercept's records are fed and answered here. Returns the ready keys."""
        until = min(self.next_heartbeat, self.stop_at)
        timer = self.engine.next_timer()
        if timer is not None:
            until = min(until, timer)
        if wake is not None:
            until = min(until, wake)
        ready = self.selector.select(max(0.0, until - time.monotonic()))
        if any(key.data is _FROM_SUT for key, _ in ready):
            now = time.monotonic()
            for record in self.intercept.read_records():
                self.engine.feed_sut(record, now)
            _send(self.engine, self.sender, self.intercept)
        return ready


def _run(reader, engine, sender, intercept, options, notes, progress) -> bool:
    """The loop of ``replay_capture``: captured packets are fed when pacing says they are due.
    True when a failure (a lost intercept) stopped it."""
    loop = _Loop(engine, sender, intercept, options, notes, progress)
    batches = reader.batches()  # non-empty lists of packets: no generator step per packet
    batch = next(batches, None)
    at = 0  # the next packet is batch[at]
    pending = batch[0] if batch else None
    pacer = CapturePacer(options.speed)
    paced = options.speed is not None  # unpaced, every packet is due at once: skip the per-packet call
    start = loop.start
    capture_done = failed = False
    try:
        while True:
            now = time.monotonic()
            fed = 0
            # Checked per turn, not per packet: the bound may be passed by one batch at most.
            batch_size = _FEED_BATCH if _may_feed(engine) else 0
            while pending is not None and fed < batch_size:
                if paced and pacer.due(pending.ts, start) > now:
                    break
                engine.feed_capture(pending, now)
                fed += 1
                at += 1
                if at < len(batch):
                    pending = batch[at]
                else:
                    batch, at = next(batches, None), 0
                    pending = batch[0] if batch else None
            if pending is None and not capture_done:
                engine.capture_done(now)
                capture_done = True
            if not loop.turn(now):
                break
            if fed == _FEED_BATCH:
                wake = now  # more is due: just look at the intercept in between
            elif pending is not None and _may_feed(engine):
                wake = pacer.due(pending.ts, start)
            else:
                wake = None
            loop.wait(wake)
    except EnvironmentProblem as exc:
        notes.append(f"replay stopped early: {exc}")
        engine.stop(str(exc), time.monotonic())
        failed = True
    finally:
        loop.selector.close()
    if engine.stopped is not None and not capture_done:
        _count_the_rest(engine, pending, batch, at, batches)
    return failed


def _run_live(source, engine, sender, intercept, options, notes, progress) -> bool:
    """The loop of ``replay_source``: the source's descriptors and the intercept's share one
    selector; what the source has is fed as soon as it is read, at the time it is read. True
    when a failure (a lost intercept) stopped it."""
    loop = _Loop(engine, sender, intercept, options, notes, progress)
    for fd in source.filenos():
        loop.selector.register(fd, selectors.EVENT_READ, _FROM_SOURCE)
    source_done = False
    try:
        while True:
            now = time.monotonic()
            if not source_done:
                ending = source.finished  # before the read, so the last packets are fed too
                for packet in source.read_packets():
                    engine.feed_capture(packet, now)
                if ending:
                    engine.capture_done(now)
                    source_done = True
                    for fd in source.filenos():
                        loop.selector.unregister(fd)
            if not loop.turn(now):
                return False
            loop.wait(None if source_done else now + _SOURCE_POLL)  # the source's end is not selectable
    except EnvironmentProblem as exc:
        notes.append(f"replay stopped early: {exc}")
        engine.stop(str(exc), time.monotonic())
        return True
    finally:
        loop.selector.close()


def _may_feed(engine: ReplayEngine) -> bool:
    """Whether more of the capture may be read: not while too many sessions wait for a slot,
    unless no live session has anything to do but wait for the capture (no timer runs), for
    then only reading on can end them and free a slot."""
    return engine.waiting < _MAX_WAITING or engine.next_timer() is None


def _count_the_rest(engine: ReplayEngine, pending, batch, at: int, batches) -> None:
    """Feed the rest of the capture to a stopped engine: its sessions are only counted."""
    now = time.monotonic()
    while pending is not None:
        engine.feed_capture(pending, now)
        at += 1
        if at < len(batch):
            pending = batch[at]
        else:
            batch, at = next(batches, None), 0
            pending = batch[0] if batch else None
    engine.capture_done(now)


def _send(engine, sender, intercept) -> None:
    """Send what the engine has ready, registering new client endpoints first (sessions may
    start whenever the engine drains: a freed slot starts a waiting one)."""
    packets = engine.packets_to_send()
    registrations = engine.registrations()
    if registrations:
        for client, target in registrations:
            intercept.register(client, target)
        intercept.flush()
    sender.send_all(packets)
