"""Bytes of a capture file, plain or gzip-compressed (recognised by its magic, not its name).

Readers pull the file in large chunks and parse records out of an in-memory buffer, so a file of
any size is read with a buffer of about ``CHUNK`` bytes plus one record.

The work a file can cause is bounded by its size on disk: a gzip stream may inflate to at most
``MAX_INFLATE_RATIO`` times the compressed bytes read so far (checked once ``RATIO_CHECKED_FROM``
bytes have come out). Real captures compress 5 to 20 times; a gzip of gigabytes of zeros (a
decompression bomb) passes a thousand, and is refused with a ``CaptureError`` at that point
instead of being parsed for minutes. A genuine capture past the limit can be read once
decompressed (``gunzip``): a plain file costs what its size says.
"""

from __future__ import annotations

import zlib
from typing import BinaryIO

from ..errors import CaptureError

CHUNK = 1 << 20
MAX_INFLATE_RATIO = 200
RATIO_CHECKED_FROM = 8 << 20
_GZIP_MAGIC = b"\x1f\x8b"


class ByteSource:
    """A capture's decompressed bytes; ``ended_early`` is set when a gzip stream stops mid-member."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            self._file: BinaryIO = open(path, "rb")  # noqa: SIM115 - closed by close()
        except OSError as e:
            raise CaptureError(path, None, f"cannot open: {e.strerror or e}") from e
        self.compressed = self._file.peek(2)[:2] == _GZIP_MAGIC
        self.ended_early = False
        self._inflater = zlib.decompressobj(31)
        self._input = b""
        self._in_member = False
        self._inflated = 0  # bytes out of the gzip stream so far

    def read(self, size: int) -> bytes:
        """Up to ``size`` bytes; fewer only at the end of the file."""
        try:
            if not self.compressed:
                return self._file.read(size)
            return self._inflate(size)
        except OSError as e:
            raise CaptureError(self.path, None, f"read failed: {e.strerror or e}") from e

    def refill(self, buf: bytes, pos: int, need: int) -> bytes:
        """``buf[pos:]`` extended with fresh bytes to at least ``need`` bytes (fewer at the end)."""
        parts = [buf[pos:]]
        have = len(buf) - pos
        while have < need:
            more = self.read(max(CHUNK, need - have))
            if not more:
                break
            parts.append(more)
            have += len(more)
        return b"".join(parts)

    def close(self) -> None:
        self._file.close()

    def _inflate(self, size: int) -> bytes:
        parts = []
        have = 0
        while have < size:
            if not self._input:
                self._input = self._file.read(CHUNK)
                if not self._input:
                    self.ended_early = self._in_member
                    break
            if self._inflater.eof:  # the previous gzip member ended: another one, or zero padding
                self._input = self._input.lstrip(b"\0")
                if not self._input:
                    continue
                self._inflater = zlib.decompressobj(31)
            try:
                out = self._inflater.decompress(self._input, size - have)
            except zlib.error as e:
                raise CaptureError(self.path, None, f"corrupt gzip data: {e}") from e
            self._in_member = not self._inflater.eof
            self._input = self._inflater.unused_data if self._inflater.eof else self._inflater.unconsumed_tail
            parts.append(out)
            have += len(out)
            self._inflated += len(out)
            if self._inflated > RATIO_CHECKED_FROM:
                self._check_ratio()
        return b"".join(parts)

    def _check_ratio(self) -> None:
        consumed = max(1, self._file.tell() - len(self._input))
        if self._inflated > MAX_INFLATE_RATIO * consumed:
            raise CaptureError(
                self.path,
                None,
                f"gzip data inflates over {MAX_INFLATE_RATIO} times ({self._inflated >> 20} MiB out of the first "
                f"{consumed >> 10} KiB): refused as a likely decompression bomb; if the capture is genuine, "
                f"decompress it (gunzip) and give the plain file",
            )
