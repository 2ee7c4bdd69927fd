"""TCP flows of a capture: packets in, one reassembled ``CapturedSession`` per connection out."""

from .assembler import SEQ_JUMP, FlowAssembler, assemble_sessions
from .session import CapturedSession, CloseKind
from .stream import ByteStream, Chunk

__all__ = [
    "SEQ_JUMP",
    "ByteStream",
    "CapturedSession",
    "Chunk",
    "CloseKind",
    "FlowAssembler",
    "assemble_sessions",
]
