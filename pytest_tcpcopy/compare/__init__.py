"""Response comparison: sessions -> exchanges (by codec) -> normalised trees -> diffs -> verdicts
-> findings.

A pure library (no I/O, no pytest): the plugin feeds it captured sessions and replay results.
"""

from .codecs import Codec, CodecRegistry, HttpCodec, RawCodec, default_registry, detect_codec, register_codec
from .config import VOLATILE_HEADERS, DiffConfig
from .diff import Change, ChangeKind, ExchangeDiff, diff_exchange
from .endpoints import endpoint_template
from .exchange import (
    Conversation,
    Exchange,
    HttpRequest,
    HttpResponse,
    InterimResponse,
    RawMessage,
    Turn,
)
from .findings import Finding, FindingKey, FindingsAccumulator
from .judge import compare_sessions
from .noise import Verdict, classify
from .normalize import normalize_response
from .pairing import capture_turns, exchanges_from_capture, exchanges_from_replay, replay_turns
from .redact import REDACTED, SECRET_NAMES, SECRET_PATTERNS, Redaction
from .usage import IgnoreUsage
from .verdict import Cause, ComparisonStatus, ExchangeComparison, NotComparable, ReplayProblem
from .volatile import IgnoreSuggestion, VolatileKind, suggest_ignore, volatile_kind

__all__ = [
    "REDACTED",
    "SECRET_NAMES",
    "SECRET_PATTERNS",
    "VOLATILE_HEADERS",
    "Cause",
    "Change",
    "ChangeKind",
    "Codec",
    "CodecRegistry",
    "ComparisonStatus",
    "Conversation",
    "DiffConfig",
    "Exchange",
    "ExchangeComparison",
    "ExchangeDiff",
    "Finding",
    "FindingKey",
    "FindingsAccumulator",
    "HttpCodec",
    "HttpRequest",
    "HttpResponse",
    "IgnoreSuggestion",
    "IgnoreUsage",
    "InterimResponse",
    "NotComparable",
    "RawCodec",
    "RawMessage",
    "Redaction",
    "ReplayProblem",
    "Turn",
    "Verdict",
    "VolatileKind",
    "capture_turns",
    "classify",
    "compare_sessions",
    "default_registry",
    "detect_codec",
    "diff_exchange",
    "endpoint_template",
    "exchanges_from_capture",
    "exchanges_from_replay",
    "normalize_response",
    "register_codec",
    "replay_turns",
    "suggest_ignore",
    "volatile_kind",
]
