"""Response comparison: sessions -> exchanges (by codec) -> normalised trees -> diffs -> verdicts.

A pure library (no I/O, no pytest): the plugin feeds it captured sessions and replay results.
"""

from .codecs import Codec, CodecRegistry, HttpCodec, RawCodec, default_registry, detect_codec, register_codec
from .config import VOLATILE_HEADERS, DiffConfig
from .diff import Change, ChangeKind, ExchangeDiff, diff_exchange
from .exchange import (
    Conversation,
    Exchange,
    HttpRequest,
    HttpResponse,
    InterimResponse,
    RawMessage,
    Turn,
)
from .noise import Verdict, classify
from .normalize import normalize_response
from .pairing import (
    ComparisonStatus,
    ExchangeComparison,
    capture_turns,
    compare_sessions,
    exchanges_from_capture,
    exchanges_from_replay,
    replay_turns,
)
from .redact import REDACTED, SECRET_HEADERS, SECRET_KEYS, SECRET_PATTERNS, Redaction

__all__ = [
    "REDACTED",
    "SECRET_HEADERS",
    "SECRET_KEYS",
    "SECRET_PATTERNS",
    "VOLATILE_HEADERS",
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
    "HttpCodec",
    "HttpRequest",
    "HttpResponse",
    "InterimResponse",
    "RawCodec",
    "RawMessage",
    "Redaction",
    "Turn",
    "Verdict",
    "capture_turns",
    "classify",
    "compare_sessions",
    "default_registry",
    "detect_codec",
    "diff_exchange",
    "exchanges_from_capture",
    "exchanges_from_replay",
    "normalize_response",
    "register_codec",
    "replay_turns",
]
