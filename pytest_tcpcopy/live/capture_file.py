"""Capture files written as packets arrive: classic pcap or pcapng, optionally gzip-compressed.

The file name chooses the format: ``.pcap`` or ``.pcapng``, either with ``.gz`` after it. Records
are raw IP packets (link type 101) with nanosecond timestamps, as live capture produces them; the
capture readers (``capture.open_capture``), tcpdump and Wireshark read both formats back.
``save_recording`` writes an existing capture (a live run's temporary recording) under a name of
the user's choosing, in the format that name asks for.
"""

from __future__ import annotations

import enum
import gzip
import os
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pytest_tcpcopy

from ..capture import open_capture
from ..capture.pcap import MAGICS
from ..errors import UsageError
from .protocol import LINKTYPE_RAW

MAX_SNAPLEN = 262_144  # libpcap's and Wireshark's largest standard snap length

_PCAP_HEADER = struct.Struct("<IHHiIII")
_PCAP_MAGIC_NS = 0xA1B23C4D
_PCAP_RECORD = struct.Struct("<IIII")
_BLOCK_HEAD = struct.Struct("<II")  # block type, total length
_SECTION = struct.Struct("<IHHq")  # byte-order magic, major, minor, section length (-1: unknown)
_INTERFACE = struct.Struct("<HHI")  # link type, reserved, snap length
_ENHANCED = struct.Struct("<IIIII")  # interface, timestamp high, timestamp low, captured, original
_OPTION = struct.Struct("<HH")
_U32 = struct.Struct("<I")
_SHB, _IDB, _EPB = 0x0A0D0D0A, 0x00000001, 0x00000006
_OPT_END, _SHB_USERAPPL, _IF_NAME, _IF_TSRESOL = 0, 4, 2, 9


class CaptureFormat(enum.Enum):
    PCAP = "pcap"
    PCAPNG = "pcapng"


@dataclass(frozen=True, slots=True)
class CaptureFileKind:
    """What a capture file's name asks for."""

    format: CaptureFormat
    gzip: bool

    def __str__(self) -> str:
        return self.format.value + (", gzip-compressed" if self.gzip else "")


def capture_file_kind(path: str | os.PathLike[str]) -> CaptureFileKind:
    """The format ``path``'s name asks for; UsageError for any other name."""
    suffixes = [s.lower() for s in Path(path).suffixes[-2:]]
    compressed = bool(suffixes) and suffixes[-1] == ".gz"
    if compressed:
        suffixes = suffixes[:-1]
    suffix = suffixes[-1] if suffixes else ""
    for kind in CaptureFormat:
        if suffix == "." + kind.value:
            return CaptureFileKind(kind, compressed)
    raise UsageError(f"{os.fspath(path)}: name the capture file *.pcap or *.pcapng (either with .gz after it to "
                     "compress it); the name chooses the format")  # fmt: skip


class CaptureFileWriter:
    """Writes packets to a new capture file at ``path`` in the format its name asks for.

    Every record holds one packet of link type ``linktype`` (raw IP unless told otherwise);
    ``iface`` names the capture interface in a pcapng file. ``flush()`` pushes what was written
    so far to the file (a gzip stream stays readable up to there); ``close()`` ends the file.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        linktype: int = LINKTYPE_RAW,
        snaplen: int = MAX_SNAPLEN,
        iface: str | None = None,
    ) -> None:
        self.path = os.fspath(path)
        self.kind = capture_file_kind(self.path)
        self.linktype = linktype
        self.packets = 0
        self.bytes = 0  # captured bytes written, headers of the file format not included
        try:
            raw: BinaryIO = open(self.path, "wb")  # noqa: SIM115 - closed by close()
        except OSError as exc:
            raise UsageError(f"cannot write {self.path}: {exc.strerror or exc}") from None
        self._raw = raw
        self._out: BinaryIO = (
            gzip.GzipFile(filename=Path(self.path).stem, mode="wb", fileobj=raw) if self.kind.gzip else raw
        )
        if self.kind.format is CaptureFormat.PCAP:
            self._out.write(_PCAP_HEADER.pack(_PCAP_MAGIC_NS, 2, 4, 0, 0, snaplen, linktype))
            self._record = self._pcap_record
        else:
            application = f"pytest-tcpcopy {pytest_tcpcopy.__version__}".encode()
            self._out.write(_block(_SHB, _SECTION.pack(0x1A2B3C4D, 1, 0, -1) + _options((_SHB_USERAPPL, application))))
            options = [(_IF_TSRESOL, b"\x09")]  # timestamps in units of 10^-9 s
            if iface:
                options.insert(0, (_IF_NAME, iface.encode()))
            self._out.write(_block(_IDB, _INTERFACE.pack(linktype, 0, snaplen) + _options(*options)))
            self._record = self._pcapng_record

    def write(self, ts_ns: int, data: bytes, orig_len: int | None = None) -> None:
        """Append one packet captured at ``ts_ns`` (ns since the epoch); ``orig_len`` is its
        length on the wire when ``data`` was cut short."""
        self._out.write(self._record(ts_ns, data, len(data) if orig_len is None else max(orig_len, len(data))))
        self.packets += 1
        self.bytes += len(data)

    def flush(self) -> None:
        self._out.flush()
        self._raw.flush()

    def close(self) -> None:
        if not self._raw.closed:
            self._out.close()
            self._raw.close()

    def __enter__(self) -> CaptureFileWriter:  # noqa: PYI034 - typing.Self needs Python 3.11
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @staticmethod
    def _pcap_record(ts_ns: int, data: bytes, orig_len: int) -> bytes:
        seconds, nanoseconds = divmod(ts_ns, 1_000_000_000)
        return _PCAP_RECORD.pack(seconds, nanoseconds, len(data), orig_len) + data

    @staticmethod
    def _pcapng_record(ts_ns: int, data: bytes, orig_len: int) -> bytes:
        body = _ENHANCED.pack(0, ts_ns >> 32, ts_ns & 0xFFFFFFFF, len(data), orig_len) + _padded(data)
        return _block(_EPB, body)


def _block(kind: int, body: bytes) -> bytes:
    length = _BLOCK_HEAD.size + len(body) + _U32.size
    return _BLOCK_HEAD.pack(kind, length) + body + _U32.pack(length)


def _options(*options: tuple[int, bytes]) -> bytes:
    return b"".join(_OPTION.pack(code, len(value)) + _padded(value) for code, value in options) + _OPTION.pack(
        _OPT_END, 0
    )


def _padded(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


@dataclass(frozen=True, slots=True)
class SavedRecording:
    path: str
    kind: CaptureFileKind
    packets: int


def save_recording(recording: str | os.PathLike[str], to: str | os.PathLike[str]) -> SavedRecording:
    """Write the capture ``recording`` (pcap or pcapng, plain or gzip) to ``to``, in the format
    ``to``'s name asks for, creating its folder. The same format is copied byte for byte (and
    compressed or decompressed as asked); pcap <-> pcapng is converted record by record, which
    needs one link type in the file and keeps timestamps to a fraction of a microsecond (they
    pass through a float of seconds)."""
    kind = capture_file_kind(to)
    target = Path(to)
    target.parent.mkdir(parents=True, exist_ok=True)
    open_capture(recording).close()  # a CaptureError now for anything but a capture
    with _decompressed(recording) as src:
        same_format = (src.read(4) in MAGICS) == (kind.format is CaptureFormat.PCAP)
    if same_format:
        with _decompressed(recording) as src, open(target, "wb") as raw:
            if kind.gzip:
                with gzip.GzipFile(filename=target.stem, mode="wb", fileobj=raw) as out:
                    shutil.copyfileobj(src, out)
            else:
                shutil.copyfileobj(src, raw)
        with open_capture(target) as reader:
            return SavedRecording(os.fspath(target), kind, sum(1 for _ in reader.records()))
    writer: CaptureFileWriter | None = None
    try:
        with open_capture(recording) as reader:
            for record in reader.records():
                if writer is None:
                    writer = CaptureFileWriter(target, linktype=record.linktype)
                elif record.linktype != writer.linktype:
                    raise UsageError(f"{os.fspath(recording)}: record {record.index} has link type {record.linktype}, "
                                     f"the ones before it {writer.linktype}; a pcap file holds one")  # fmt: skip
                writer.write(round(record.ts * 1e9), record.data, record.orig_len)
        if writer is None:
            writer = CaptureFileWriter(target)
        return SavedRecording(os.fspath(target), kind, writer.packets)
    finally:
        if writer is not None:
            writer.close()


def _decompressed(path: str | os.PathLike[str]) -> BinaryIO:
    with open(path, "rb") as probe:
        compressed = probe.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if compressed else open(path, "rb")
