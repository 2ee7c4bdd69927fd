"""The sans-IO TCP session translator and what it needs: sequence arithmetic, checksums, packet
parsing and building, options, events, client addressing and capture pacing."""

from pytest_tcpcopy.kernel.codecs import SegmentBuilder, SutSegment, parse_sut_segment
from pytest_tcpcopy.tcp._state import SessionState
from pytest_tcpcopy.tcp.addressing import ClientAddressMap, ClientAllocator
from pytest_tcpcopy.tcp.events import (
    Aborted,
    AbortReason,
    Closed,
    Established,
    Event,
    Reconnected,
    RequestSent,
    ResponseData,
    ResponseEnd,
    ResponseEnded,
    SessionCounters,
    Side,
)
from pytest_tcpcopy.tcp.pacing import CapturePacer
from pytest_tcpcopy.tcp.translator import SessionTranslator, TranslatorConfig

__all__ = [
    "AbortReason",
    "Aborted",
    "CapturePacer",
    "ClientAddressMap",
    "ClientAllocator",
    "Closed",
    "Established",
    "Event",
    "Reconnected",
    "RequestSent",
    "ResponseData",
    "ResponseEnd",
    "ResponseEnded",
    "SegmentBuilder",
    "SessionCounters",
    "SessionState",
    "SessionTranslator",
    "Side",
    "SutSegment",
    "TranslatorConfig",
    "parse_sut_segment",
]
