"""The mirror agent's I/O shell: live capture in, PACKETS frames out to the test runner.

One thread, one selector: captured packets go into a bounded buffer whether or not a runner is
connected; while one is, the buffer is sent in frames of at most ``batch_bytes``, with a STATS
frame every ``stats_every`` seconds. A refused or broken connection is retried with exponential
backoff. At ``duration`` (or ``stop()``) capturing ends, the buffer is drained for at most
``drain_grace`` seconds, and the agent says BYE with its final counters just before it.

Counting: a packet is ``sent`` once its whole frame is in the kernel's send buffer; a frame cut by
a broken connection counts its packets in ``buffer_dropped`` (bytes the kernel had accepted for a
runner that then died are lost without a count: TCP cannot tell us).
"""

from __future__ import annotations

import errno
import logging
import os
import selectors
import socket
import time
from typing import Protocol

from ..endpoint import Endpoint
from .buffer import Backoff, PacketBuffer
from .capture import LiveCounters
from .protocol import (
    Bye,
    Error,
    FrameReader,
    Hello,
    MirrorProtocolError,
    Stats,
    encode,
    encode_packets,
)

log = logging.getLogger("pytest_tcpcopy.mirror")

_READ_BATCH = 1024  # packets taken from the capture socket per loop turn
_MAX_WAIT = 0.1  # longest select; bounds how late stop() and the duration are noticed


class IpPacketSource(Protocol):
    """What the agent captures from: ``LiveCapture`` in production."""

    iface: str
    ports: tuple[int, ...]
    snaplen: int
    counters: LiveCounters

    def fileno(self) -> int: ...

    def read_ip(self, max_n: int) -> list[tuple[int, bytes]]: ...

    def poll_stats(self) -> LiveCounters: ...


class _Link:
    """One connection (or connection attempt) to the runner."""

    __slots__ = ("connected", "events", "out", "out_records", "reader", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.connected = False
        self.events = 0
        self.out = bytearray()
        self.out_records = 0  # packets inside ``out``, counted as sent once it is all written
        self.reader = FrameReader()


class MirrorAgent:
    """Streams what ``capture`` sees to the runner listening at ``to`` for ``duration`` seconds."""

    def __init__(
        self,
        capture: IpPacketSource,
        to: Endpoint,
        *,
        name: str,
        duration: float,
        buffer: int = 100_000,
        batch_bytes: int = 256 << 10,
        stats_every: float = 1.0,
        drain_grace: float = 2.0,
        backoff: Backoff | None = None,
    ) -> None:
        self.capture = capture
        self.to = to
        self.hello = Hello(name, capture.iface, capture.ports, capture.snaplen)
        self.duration = duration
        self.buffer = PacketBuffer(buffer)
        self.batch_bytes = batch_bytes
        self.stats_every = stats_every
        self.drain_grace = drain_grace
        self.backoff = backoff or Backoff()
        self.captured = 0
        self.sent = 0
        self.lost_in_flight = 0
        self.connections = 0
        self.unsent = 0  # packets still buffered when the agent stopped
        self.stop_reason = ""
        self._stopping = False
        self._next_connect = 0.0
        self._link: _Link | None = None
        self._failures = 0  # connection attempts failed in a row
        self._sel = selectors.DefaultSelector()

    def counters(self) -> Stats:
        return Stats(
            captured=self.captured,
            kernel_dropped=self.capture.counters.kernel_dropped,
            buffer_dropped=self.buffer.dropped + self.lost_in_flight,
            sent=self.sent,
            connections=self.connections,
        )

    def stop(self) -> None:
        """Ask ``run`` to finish (drain, BYE) within ``_MAX_WAIT``; safe from a signal handler."""
        self._stopping = True

    def run(self) -> Stats:
        """Capture and stream until the duration passes or ``stop()``; return the final counters."""
        sel = self._sel
        sel.register(self.capture.fileno(), selectors.EVENT_READ, None)
        start = time.monotonic()
        stop_at = start + self.duration
        self._next_connect = start
        next_stats = start + self.stats_every
        try:
            while not self._stopping:
                now = time.monotonic()
                if now >= stop_at:
                    self.stop_reason = f"duration of {self.duration:g} s reached"
                    break
                if self._link is None and now >= self._next_connect:
                    self._connect()
                if now >= next_stats:
                    self.capture.poll_stats()
                    next_stats = now + self.stats_every
                    if self._link is not None and self._link.connected:
                        self._link.out += encode(self.counters())
                self._fill()
                wake = min(stop_at, next_stats, self._next_connect if self._link is None else stop_at)
                for key, mask in self._select(max(0.0, min(_MAX_WAIT, wake - time.monotonic()))):
                    if key.data is None:
                        self._capture_some()
                    elif key.data is self._link:
                        self._service(mask)
            else:
                self.stop_reason = "stopped"
            self._finish()
        finally:
            self._close_link()
            sel.close()
        return self.counters()

    # -- capture ---------------------------------------------------------------------------

    def _capture_some(self) -> None:
        records = self.capture.read_ip(_READ_BATCH)
        self.captured += len(records)
        self.buffer.push(records)

    # -- connection ------------------------------------------------------------------------

    def _select(self, timeout: float) -> list:
        link = self._link
        if link is not None:
            want = selectors.EVENT_READ | (selectors.EVENT_WRITE if not link.connected or link.out else 0)
            if want != link.events:
                if link.events:
                    self._sel.modify(link.sock, want, link)
                else:
                    self._sel.register(link.sock, want, link)
                link.events = want
        return self._sel.select(timeout)

    def _connect(self) -> None:
        sock = socket.socket(self.to.family, socket.SOCK_STREAM)
        sock.setblocking(False)
        self._link = _Link(sock)
        code = sock.connect_ex((self.to.host, self.to.port))
        if code not in (0, errno.EINPROGRESS):
            self._connect_failed(code)

    def _connect_failed(self, code: int) -> None:
        self._failures += 1
        if self._failures == 1:
            log.info("runner at %s not reachable (%s); retrying with backoff", self.to, _strerror(code))
        self._close_link()

    def _service(self, mask: int) -> None:
        link = self._link
        if not link.connected:
            code = link.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code:
                self._connect_failed(code)
                return
            if link.sock.getsockname()[1] in self.capture.ports:  # we would capture our own stream
                self._close_link()
                return
            link.connected = True
            self.connections += 1
            self._failures = 0
            self.backoff.reset()
            link.out += encode(self.hello) + encode(self.counters())
            log.info("connected to runner at %s", self.to)
        if mask & selectors.EVENT_READ and not self._read():
            return
        self._fill()
        self._flush()

    def _read(self) -> bool:
        """Read what the runner sent (only ERROR frames are defined); False once disconnected."""
        link = self._link
        try:
            data = link.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return True
        except OSError as exc:
            return self._disconnect(f"connection failed: {exc.strerror or exc}")
        if not data:
            return self._disconnect("the runner closed the connection")
        try:
            events = link.reader.feed(data)
        except MirrorProtocolError as exc:
            return self._disconnect(f"unreadable reply from the runner: {exc}")
        for event in events:
            if isinstance(event, Error):
                return self._disconnect(f"the runner refused us: {event.reason}")
            return self._disconnect(f"the runner sent an unexpected {type(event).__name__} frame")
        return True

    def _fill(self) -> None:
        link = self._link
        if link is None or not link.connected or link.out_records or not self.buffer:
            return
        records = self.buffer.take(self.batch_bytes)
        link.out += encode_packets(records)
        link.out_records = len(records)

    def _flush(self) -> None:
        link = self._link
        while link.out:
            try:
                n = link.sock.send(link.out)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._disconnect(f"connection failed: {exc.strerror or exc}")
                return
            del link.out[:n]
        self.sent += link.out_records
        link.out_records = 0

    def _disconnect(self, reason: str) -> bool:
        log.info("lost the runner at %s: %s; reconnecting with backoff", self.to, reason)
        self.lost_in_flight += self._link.out_records
        self._close_link()
        return False

    def _close_link(self) -> None:
        """Close the connection (or attempt) and schedule the next attempt after the backoff."""
        link = self._link
        if link is None:
            return
        if link.events:
            self._sel.unregister(link.sock)
        link.sock.close()
        self._link = None
        self._next_connect = time.monotonic() + self.backoff.next_delay()

    # -- the end ---------------------------------------------------------------------------

    def _finish(self) -> None:
        """Drain the buffer to a connected runner within ``drain_grace``, then STATS and BYE."""
        self._sel.unregister(self.capture.fileno())
        self.capture.poll_stats()
        link = self._link
        deadline = time.monotonic() + self.drain_grace
        if link is not None and link.connected:
            while (self.buffer or link.out) and self._link is link and time.monotonic() < deadline:
                self._fill()
                self._flush()
                if link.out:
                    self._select(max(0.0, min(_MAX_WAIT, deadline - time.monotonic())))
        self.unsent = len(self.buffer) + (link.out_records if link is not None and self._link is link else 0)
        if link is None or self._link is not link or not link.connected or link.out:
            return
        link.out += encode(self.counters()) + encode(Bye(self.stop_reason))
        while link.out and self._link is link and time.monotonic() < deadline:
            self._flush()
            if link.out:
                self._select(max(0.0, min(_MAX_WAIT, deadline - time.monotonic())))
        if self._link is link and not link.out:
            self._await_close(link, deadline)

    def _await_close(self, link: _Link, deadline: float) -> None:
        """Half-close and wait (bounded) for the runner to close, so nothing is reset in flight."""
        try:
            link.sock.shutdown(socket.SHUT_WR)
        except OSError:
            return
        while time.monotonic() < deadline:
            for _key, _mask in self._select(max(0.0, min(_MAX_WAIT, deadline - time.monotonic()))):
                try:
                    if not link.sock.recv(65536):
                        return
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    return


def _strerror(code: int) -> str:
    return f"{errno.errorcode.get(code, code)}: {os.strerror(code)}"
