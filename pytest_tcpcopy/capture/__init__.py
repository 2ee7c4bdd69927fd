"""Capture ingest: pcap and pcapng files (plain or gzip) streamed as decoded TCP ``Packet``s."""

from .ip import decode_ip_tcp
from .packet import Packet
from .reader import CaptureReader, CaptureTruncatedWarning, RawRecord, open_capture
from .stats import CaptureStats

__all__ = [
    "CaptureReader",
    "CaptureStats",
    "CaptureTruncatedWarning",
    "Packet",
    "RawRecord",
    "decode_ip_tcp",
    "open_capture",
]
