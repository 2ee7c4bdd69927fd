"""The copier's side of the channel: one TCP connection per intercept, driven by the copier's loop.

Connecting is blocking and bounded (a bad address or a version mismatch shows up at once, with the
intercept's address in the message); after that nothing blocks on reads: the copier selects on
``filenos()`` and calls ``read_records()``. Registrations are batched until ``flush()`` (or a full
frame); every intercept gets every registration, as tcpcopy does, so a copier need not know which
intercept sits in front of which SUT.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Sequence

from ..endpoint import Endpoint
from ..errors import EnvironmentProblem
from .protocol import (
    DEFAULT_PORT,
    Bye,
    Capability,
    Channel,
    Error,
    Heartbeat,
    ProtocolError,
    Records,
    Register,
    Role,
    Unregister,
    encode,
)

_REGISTER_BATCH = 1024  # pairs per REGISTER frame before an automatic flush
_READS_PER_CALL = 16  # recv() calls per intercept per read_records(), so one flood cannot starve the loop


def _parse_intercept(spec: Endpoint | str) -> Endpoint:
    if isinstance(spec, Endpoint):
        return spec
    if ":" not in spec or spec.endswith("]"):
        spec = f"{spec}:{DEFAULT_PORT}"
    return Endpoint.parse(spec)


class _Link:
    """One intercept connection."""

    def __init__(self, where: Endpoint, sock: socket.socket, channel: Channel) -> None:
        self.where = where
        self.sock = sock
        self.channel = channel
        self.last_heard = time.monotonic()


class InterceptClient:
    """Connections to one or more intercepts ("ADDR[:PORT]" or Endpoint; port 36524 by default).

    Raises EnvironmentProblem naming the intercept when one cannot be reached, refuses the
    channel, or lacks a capability asked for (``Capability.RESPONSE_PAYLOAD``).
    """

    def __init__(
        self,
        intercepts: Sequence[Endpoint | str],
        *,
        name: str = "copier",
        capabilities: Capability = Capability.NONE,
        timeout: float = 3.0,
        silence_limit: float = 5.0,
    ) -> None:
        if not intercepts:
            raise ValueError("InterceptClient needs at least one intercept address")
        self.silence_limit = silence_limit
        self._pending: list[tuple[type, tuple[Endpoint, Endpoint]]] = []
        self._links: list[_Link] = []
        try:
            for spec in intercepts:
                self._links.append(self._connect(_parse_intercept(spec), name, capabilities, timeout))
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _connect(where: Endpoint, name: str, capabilities: Capability, timeout: float) -> _Link:
        sock = socket.socket(where.family, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            sock.connect((where.host, where.port))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            channel = Channel(Role.COPIER, name, capabilities)
            sock.sendall(channel.hello())
            deadline = time.monotonic() + timeout
            while channel.peer is None:
                sock.settimeout(max(0.01, deadline - time.monotonic()))
                data = sock.recv(65536)
                if not data:
                    raise EnvironmentProblem(f"intercept at {where} closed the channel during HELLO")
                channel.receive(data)
        except ProtocolError as exc:
            sock.close()
            raise EnvironmentProblem(f"intercept at {where} refused the channel: {exc}") from None
        except OSError as exc:
            sock.close()
            raise EnvironmentProblem(
                f"cannot reach intercept at {where}: {exc.strerror or exc}; is `pytest-tcpcopy intercept` "
                "running in the SUT's network namespace and listening there?"
            ) from None
        except BaseException:
            sock.close()
            raise
        missing = capabilities & ~channel.peer.capabilities
        if missing:
            sock.close()
            raise EnvironmentProblem(
                f"intercept at {where} does not offer {Capability(missing).name}; start it with --capture-responses"
            )
        # Blocking sends bounded by SO_SNDTIMEO (tcpcopy uses 3 s); reads use MSG_DONTWAIT.
        sock.settimeout(None)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("ll", int(timeout), 0))
        return _Link(where, sock, channel)

    @property
    def intercepts(self) -> list[Endpoint]:
        return [link.where for link in self._links]

    def filenos(self) -> list[int]:
        """The sockets to select on for readability; then call ``read_records()``."""
        return [link.sock.fileno() for link in self._links]

    def register(self, client: Endpoint, target: Endpoint) -> None:
        """Claim the SUT's segments from ``target`` to ``client``; sent on ``flush()``."""
        self._pending.append((Register, (client, target)))
        if len(self._pending) >= _REGISTER_BATCH:
            self.flush()

    def unregister(self, client: Endpoint, target: Endpoint) -> None:
        self._pending.append((Unregister, (client, target)))
        if len(self._pending) >= _REGISTER_BATCH:
            self.flush()

    def flush(self) -> None:
        """Send pending (un)registrations to every intercept, in order. Call before sending SYNs."""
        if not self._pending:
            return
        frames: list[bytes] = []
        run: list[tuple[Endpoint, Endpoint]] = []
        kind = self._pending[0][0]
        for this_kind, pair in self._pending:
            if this_kind is not kind:
                frames.append(encode(kind(tuple(run))))
                run, kind = [], this_kind
            run.append(pair)
        frames.append(encode(kind(tuple(run))))
        self._pending.clear()
        self._send_all(b"".join(frames))

    def heartbeat(self) -> None:
        """Send a HEARTBEAT; raise if an intercept has been silent longer than ``silence_limit``.

        Intercepts send a HEARTBEAT every second when idle, so silence means a dead or wedged one.
        """
        now = time.monotonic()
        for link in self._links:
            if now - link.last_heard > self.silence_limit:
                raise EnvironmentProblem(
                    f"intercept at {link.where} has been silent for {now - link.last_heard:.1f} s"
                )
        self._send_all(encode(Heartbeat()))

    def read_records(self) -> list[bytes]:
        """Raw IP packets (headers, plus payload when captured) of SUT segments received so far."""
        records: list[bytes] = []
        for link in self._links:
            for _ in range(_READS_PER_CALL):
                try:
                    data = link.sock.recv(262144, socket.MSG_DONTWAIT)
                except BlockingIOError:
                    break
                except OSError as exc:
                    raise EnvironmentProblem(f"lost intercept at {link.where}: {exc.strerror or exc}") from None
                if not data:
                    raise EnvironmentProblem(f"intercept at {link.where} closed the channel")
                link.last_heard = time.monotonic()
                try:
                    events = link.channel.receive(data)
                except ProtocolError as exc:
                    raise EnvironmentProblem(f"intercept at {link.where} broke the protocol: {exc}") from None
                for event in events:
                    if isinstance(event, Records):
                        records.extend(event.records)
                    elif isinstance(event, Error):
                        raise EnvironmentProblem(f"intercept at {link.where} reported: {event.reason}")
                    elif isinstance(event, Bye):
                        raise EnvironmentProblem(f"intercept at {link.where} is shutting down (BYE)")
        return records

    def _send_all(self, data: bytes) -> None:
        for link in self._links:
            try:
                link.sock.sendall(data)
            except OSError as exc:
                raise EnvironmentProblem(
                    f"cannot send to intercept at {link.where}: {exc.strerror or exc}"
                ) from None

    def close(self) -> None:
        """Say BYE (best effort) and close every connection."""
        bye = encode(Bye())
        for link in self._links:
            try:
                link.sock.sendall(bye)
            except OSError:
                pass
            link.sock.close()
        self._links.clear()

    def __enter__(self) -> InterceptClient:  # noqa: PYI034 - typing.Self needs Python 3.11
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
