"""Any TCP protocol without a codec: one exchange per turn of the conversation.

A turn is what the client sent before the server answered, plus everything the server sent before
the client spoke again; the turn boundaries come with the ``Conversation`` (from capture chunk
times, or from the replay's exchange timings). The bytes themselves are not interpreted.
"""

from __future__ import annotations

from ..exchange import Conversation, Exchange, RawMessage, Turn


class RawCodec:
    """The fallback codec: it accepts every stream and splits by turns only."""

    name = "raw"

    def detect(self, client: bytes) -> bool:
        return True

    def split(self, conversation: Conversation) -> list[Exchange]:
        conv = conversation
        client, server = conv.client, conv.server
        turns = conv.turns
        if not turns and (client or server):
            turns = (Turn(0, len(client), 0, len(server)),)
        client_beyond = any(t.client_end > len(client) for t in turns)
        server_beyond = any(t.server_end > len(server) for t in turns)
        out = []
        for number, turn in enumerate(turns):
            request = RawMessage(client[turn.client_start : turn.client_end], turn.client_start)
            response = None
            if turn.server_end > turn.server_start:
                response = RawMessage(server[turn.server_start : turn.server_end], turn.server_start)
            out.append(
                Exchange(
                    conv.session,
                    number,
                    request,
                    response,
                    self.name,
                    _problem(conv, turn, response is None, client_beyond, server_beyond),
                )
            )
        return out


def _problem(conv: Conversation, turn: Turn, no_response: bool, client_beyond: bool, server_beyond: bool) -> str | None:
    """Why the turn is not clean. A turn reaching past the known bytes lost some; when no turn
    does (nothing was captured after the gap), the turn that ends at the gap is suspect."""
    if _cut(turn.client_end, len(conv.client), conv.client_cut, client_beyond):
        return f"the client stream has a gap at byte {len(conv.client)}"
    if _cut(turn.server_end, len(conv.server), conv.server_cut, server_beyond):
        return f"the server stream has a gap at byte {len(conv.server)}"
    if no_response and conv.server_note:
        return f"no response ({conv.server_note})"
    return None


def _cut(end: int, known: int, cut: bool, beyond: bool) -> bool:
    return end > known or (cut and not beyond and end == known)
