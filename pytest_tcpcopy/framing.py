"""Splitting a byte stream into frames, for the project's two framed protocols (the copier <->
intercept channel and the mirror stream). Both frame as ``[type u8][flags u8][length][body]``;
they differ in the width of the length field, the body limit, the frame types and the error they
raise, which the caller gives. Sans-IO: bytes in, decoded events out, any amount at a time.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Container
from typing import Generic, TypeVar

Event = TypeVar("Event")


class FrameSplitter(Generic[Event]):
    """Feeds bytes, returns ``decode(type, body)`` of every complete frame.

    A frame of an unknown type, with reserved flags set, or longer than ``max_body`` raises
    ``error``; after that the stream is unusable and every later ``feed`` raises it again.
    """

    def __init__(
        self,
        header: struct.Struct,
        known: Container[int],
        max_body: int,
        decode: Callable[[int, bytes], Event],
        error: type[Exception],
        name_of: Callable[[int], str],
    ) -> None:
        self._header, self._known, self._max_body = header, known, max_body
        self._decode, self._error, self._name_of = decode, error, name_of
        self._buf = bytearray()
        self._broken: Exception | None = None

    def feed(self, data: bytes) -> list[Event]:
        if self._broken is not None:
            raise self._broken
        buf = self._buf
        buf += data
        events: list[Event] = []
        pos, end, size = 0, len(buf), self._header.size
        try:
            while end - pos >= size:
                kind, flags, length = self._header.unpack_from(buf, pos)
                if kind not in self._known:
                    raise self._error(f"unknown frame type {kind}")
                if flags:
                    raise self._error(f"{self._name_of(kind)} frame has reserved flags 0x{flags:02x} set")
                if length > self._max_body:
                    raise self._error(f"{self._name_of(kind)} frame of {length} bytes; at most {self._max_body} allowed")
                start = pos + size
                if end - start < length:
                    break
                events.append(self._decode(kind, bytes(buf[start : start + length])))
                pos = start + length
        except self._error as exc:
            self._broken = exc
            raise
        del buf[:pos]
        return events
