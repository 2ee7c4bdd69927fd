"""Codecs turn a ``Conversation`` into exchanges; the registry picks one per session.

A codec is any object with a ``name``, ``detect(client_bytes) -> bool`` and
``split(conversation) -> list[Exchange]``; it must record bad traffic on the exchanges and never
raise on it. A codec that frames messages itself sets ``uses_turns = False``: its conversations
come without turns (working them out costs the judge a pass over each stream's chunks).
Registered codecs are asked in order, most recently registered first; HTTP/1.x
comes built in, and the raw turn-taking codec answers when no other does.
"""

from __future__ import annotations

from typing import Protocol

from ..exchange import Conversation, Exchange
from .http import HttpCodec
from .raw import RawCodec


class Codec(Protocol):
    name: str

    def detect(self, client: bytes) -> bool: ...

    def split(self, conversation: Conversation) -> list[Exchange]: ...


class CodecRegistry:
    """An ordered list of codecs and the raw fallback."""

    def __init__(self, codecs: tuple[Codec, ...] = (HttpCodec(),)) -> None:
        self._codecs = list(codecs)
        self.fallback: Codec = RawCodec()
        # The last detection, (client bytes, codec): production's exchanges and each replay's
        # are split from the same client bytes, one after the other. Swapped whole.
        self._last: tuple[bytes, Codec] | None = None

    @property
    def codecs(self) -> tuple[Codec, ...]:
        return tuple(self._codecs)

    def register(self, codec: Codec) -> None:
        """Ask ``codec`` before every codec registered so far (it replaces one of the same name)."""
        self._codecs = [c for c in self._codecs if c.name != codec.name]
        self._codecs.insert(0, codec)
        self._last = None

    def unregister(self, name: str) -> None:
        self._codecs = [c for c in self._codecs if c.name != name]
        self._last = None

    def detect(self, client: bytes) -> Codec:
        """The first codec that recognises the client's bytes, else the raw codec."""
        last = self._last
        if last is not None and (last[0] is client or last[0] == client):
            return last[1]
        found = next((codec for codec in self._codecs if codec.detect(client)), self.fallback)
        self._last = (client, found)
        return found


default_registry = CodecRegistry()


def register_codec(codec: Codec) -> None:
    """Add ``codec`` to the default registry, ahead of the built-in ones."""
    default_registry.register(codec)


def detect_codec(client: bytes) -> Codec:
    """The codec the default registry picks for a session whose client sent ``client``."""
    return default_registry.detect(client)


__all__ = ["Codec", "CodecRegistry", "HttpCodec", "RawCodec", "default_registry", "detect_codec", "register_codec"]
