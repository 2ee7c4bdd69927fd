"""Recording live traffic into a capture file: what ``pytest-tcpcopy record`` runs.

``LiveRecorder.run`` reads a ``LiveCapture`` without blocking, writes every packet as it arrives
(the IP packets as captured: options, fragments and all; their length on the wire from the IP
header when the snap length cut them), hands the decoded TCP segments to an optional observer (which
may say that enough was recorded), and reports progress at a fixed interval. It stops at the
first of: the duration, the observer's ``done()``, ``stop()`` (safe from a signal handler). The
file is flushed at every progress report, so a killed recorder leaves a readable file behind.
"""

from __future__ import annotations

import selectors
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from ..capture.packet import Packet
from .capture import LiveCapture, seconds
from .capture_file import CaptureFileWriter

_READ_BATCH = 1024
_MAX_WAIT = 0.1  # longest select: bounds how late stop() and the end are noticed
_LENGTH = struct.Struct("!H")


class Observer(Protocol):
    """Sees every recorded TCP segment; ``done()`` ends the recording."""

    def observe(self, packets: list[Packet]) -> None: ...

    def done(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class RecordingProgress:
    seconds: float  # since the recording began
    packets: int  # written to the file
    bytes: int  # captured bytes written
    kernel_dropped: int  # packets the kernel dropped because the socket's buffer was full


class LiveRecorder:
    """Writes what ``capture`` sees to ``writer`` until the duration passes, ``observer.done()``
    or ``stop()``; the caller owns (and closes) both."""

    def __init__(self, capture: LiveCapture, writer: CaptureFileWriter, observer: Observer | None = None) -> None:
        self.capture = capture
        self.writer = writer
        self.observer = observer
        self.stop_reason = ""
        self._stopping = False
        self._index = 0
        self._started = 0.0

    def stop(self) -> None:
        """Ask ``run`` to finish within ``_MAX_WAIT`` seconds."""
        self._stopping = True

    def progress(self) -> RecordingProgress:
        return RecordingProgress(
            seconds=time.monotonic() - self._started,
            packets=self.writer.packets,
            bytes=self.writer.bytes,
            kernel_dropped=self.capture.counters.kernel_dropped,
        )

    def run(
        self,
        duration: float | None = None,
        *,
        report: Callable[[RecordingProgress], None] | None = None,
        every: float = 1.0,
    ) -> RecordingProgress:
        """Record until the first stop condition; the final progress, with ``stop_reason`` set."""
        self._started = start = time.monotonic()
        stop_at = float("inf") if duration is None else start + duration
        next_report = start + every
        with selectors.DefaultSelector() as selector:
            selector.register(self.capture.fileno(), selectors.EVENT_READ)
            while True:
                self._record_some()
                now = time.monotonic()
                if self._stopping:
                    self.stop_reason = "stopped"
                elif self.observer is not None and self.observer.done():
                    self.stop_reason = "count reached"
                elif now >= stop_at:
                    self.stop_reason = f"duration of {duration:g} s reached"
                if self.stop_reason:
                    break
                if now >= next_report:
                    next_report = now + every
                    self.capture.poll_stats()
                    self.writer.flush()
                    if report is not None:
                        report(self.progress())
                selector.select(max(0.0, min(_MAX_WAIT, stop_at - now, next_report - now)))
        self._record_some()  # what arrived while deciding to stop
        self.capture.poll_stats()
        self.writer.flush()
        return self.progress()

    def _record_some(self) -> None:
        """Write what is waiting in the socket (a bounded number of batches)."""
        write = self.writer.write
        decode = self.capture.decoder.decode
        for _ in range(16):
            records = self.capture.read_ip(_READ_BATCH)
            if not records:
                return
            packets = []
            for ts_ns, frame in records:
                ip, wire = ip_packet(frame)
                write(ts_ns, ip, wire)
                if self.observer is not None:
                    packet = decode(self._index, seconds(ts_ns), ip)
                    if packet is not None:
                        packets.append(packet)
                self._index += 1
            if packets:
                self.observer.observe(packets)


def ip_packet(frame: bytes) -> tuple[bytes, int]:
    """The IP packet in what follows a link header, and its length on the wire, both from its
    header: the link layer's padding of short frames is cut off, a cut packet keeps its length."""
    if len(frame) >= 4 and frame[0] >> 4 == 4:
        total = _LENGTH.unpack_from(frame, 2)[0]
    elif len(frame) >= 6 and frame[0] >> 4 == 6:
        total = 40 + _LENGTH.unpack_from(frame, 4)[0]
    else:
        return frame, len(frame)
    if total == 0:  # a segmentation offload's super-packet may leave it unset
        return frame, len(frame)
    return frame[:total], total
