"""The copier <-> intercept channel: a sans-IO protocol (protocol.py) and the copier's client."""

from .client import InterceptClient
from .protocol import (
    DEFAULT_PORT,
    PROTOCOL_VERSION,
    Bye,
    Capability,
    Channel,
    Error,
    FrameReader,
    Heartbeat,
    Hello,
    ProtocolError,
    Records,
    Register,
    Role,
    Unregister,
    encode,
    encode_records,
)

__all__ = [
    "DEFAULT_PORT",
    "PROTOCOL_VERSION",
    "Bye",
    "Capability",
    "Channel",
    "Error",
    "FrameReader",
    "Heartbeat",
    "Hello",
    "InterceptClient",
    "ProtocolError",
    "Records",
    "Register",
    "Role",
    "Unregister",
    "encode",
    "encode_records",
]
