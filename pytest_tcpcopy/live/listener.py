"""The runner's end of the mirror: accepts agents and turns their PACKETS into ``Packet``s.

Everything is non-blocking and hides behind one file descriptor: the listening socket and every
agent connection sit in an epoll set whose own descriptor is readable whenever any of them is, so
a caller's selector registers ``filenos()`` once, however many agents come and go.

An agent that breaks the protocol gets an ERROR frame with the reason, a warning in the log, and
its connection closed; the other agents never notice. Counters are per agent name (an agent that
reconnects keeps its entry); STATS carry the agent's own counters, which replace the previous ones.
"""

from __future__ import annotations

import logging
import selectors
import socket
from dataclasses import asdict, dataclass, field

from ..capture.packet import Packet
from ..endpoint import Endpoint, open_listener
from ..errors import EnvironmentProblem
from .capture import seconds
from .decode import PacketDecoder
from .protocol import Bye, Error, MirrorProtocolError, MirrorReceiver, Packets, Stats, encode

log = logging.getLogger("pytest_tcpcopy.mirror")

_READS_PER_CALL = 16  # recv() calls per agent per read_packets(), so one flood cannot starve the rest
_ACCEPTS_PER_CALL = 64
_RECV_SIZE = 1 << 18


@dataclass(slots=True)
class AgentCounters:
    """What one agent (by name) delivered, and what it says it captured and lost."""

    connections: int = 0  # connections this listener accepted from it
    packets: int = 0  # TCP segments decoded from its PACKETS frames
    records: int = 0  # packet records received (decoded or not)
    undecodable: int = 0  # records that were not TCP on its ports, or not readable
    reported: Stats | None = None  # its latest STATS
    bye: str | None = None  # the reason of its last BYE

    @property
    def dropped(self) -> int:
        """Packets the agent reports lost (kernel and its own buffer)."""
        if self.reported is None:
            return 0
        return self.reported.kernel_dropped + self.reported.buffer_dropped


@dataclass(slots=True)
class ListenerCounters:
    received: int = 0  # Packets handed out by read_packets
    agents_accepted: int = 0  # connections accepted
    refused: int = 0  # connections closed for breaking the protocol
    agents: dict[str, AgentCounters] = field(default_factory=dict)

    @property
    def agent_dropped(self) -> int:
        """Packets the agents report lost, summed over agents."""
        return sum(agent.dropped for agent in self.agents.values())

    def as_dict(self) -> dict[str, object]:
        out = asdict(self)
        out["agent_dropped"] = self.agent_dropped
        return out


class _Agent:
    __slots__ = ("decoder", "peer", "receiver", "sock")

    def __init__(self, sock: socket.socket, peer: str) -> None:
        self.sock = sock
        self.peer = peer
        self.receiver = MirrorReceiver()
        self.decoder: PacketDecoder | None = None

    def __repr__(self) -> str:
        hello = self.receiver.hello
        return f"mirror agent at {self.peer}" if hello is None else f"mirror agent {hello.name!r} at {self.peer}"


class MirrorListener:
    """Listens for mirror agents on ``listen`` (port 0: any free port, see ``address``)."""

    def __init__(self, listen: Endpoint, *, backlog: int = 64) -> None:
        self.counters = ListenerCounters()
        try:
            self._sock = open_listener(listen, backlog)
        except OSError as exc:
            raise EnvironmentProblem(
                f"cannot listen for mirror agents on {listen}: {exc.strerror or exc}; pick another address"
            ) from None
        self._epoll = selectors.EpollSelector()
        self._epoll.register(self._sock, selectors.EVENT_READ, None)
        self._agents: set[_Agent] = set()
        self._index = 0

    @property
    def address(self) -> Endpoint:
        host, port = self._sock.getsockname()[:2]
        return Endpoint.parse(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")

    @property
    def connected(self) -> int:
        """Agents connected right now."""
        return len(self._agents)

    def filenos(self) -> list[int]:
        """One descriptor, readable whenever an agent connects or sends."""
        return [self._epoll.fileno()]

    def read_packets(self) -> list[Packet]:
        """Every Packet that arrived since the last call (bounded per agent), without blocking."""
        out: list[Packet] = []
        for key, _mask in self._epoll.select(0):
            if key.data is None:
                self._accept()
            else:
                self._read(key.data, out)
        self.counters.received += len(out)
        return out

    def close(self) -> None:
        for agent in list(self._agents):
            self._drop(agent)
        self._epoll.close()
        self._sock.close()

    def __enter__(self) -> MirrorListener:  # noqa: PYI034 - typing.Self needs Python 3.11
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _accept(self) -> None:
        for _ in range(_ACCEPTS_PER_CALL):
            try:
                sock, address = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            sock.setblocking(False)
            host, port = address[:2]
            agent = _Agent(sock, f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
            self._agents.add(agent)
            self._epoll.register(sock, selectors.EVENT_READ, agent)
            self.counters.agents_accepted += 1

    def _read(self, agent: _Agent, out: list[Packet]) -> None:
        for _ in range(_READS_PER_CALL):
            try:
                data = agent.sock.recv(_RECV_SIZE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.warning("%r: connection failed: %s", agent, exc.strerror or exc)
                self._drop(agent)
                return
            if not data:
                if agent.receiver.bye is None:
                    log.warning("%r went away without BYE", agent)
                self._drop(agent)
                return
            try:
                events = agent.receiver.receive(data)
            except MirrorProtocolError as exc:
                self._refuse(agent, str(exc))
                return
            if agent.decoder is None and agent.receiver.hello is not None:
                self._greet(agent)
            for event in events:
                self._handle(agent, event, out)
            if agent.receiver.bye is not None:
                self._drop(agent)
                return

    def _greet(self, agent: _Agent) -> None:
        hello = agent.receiver.hello
        agent.decoder = PacketDecoder(hello.ports)
        self._counters_of(agent).connections += 1
        log.info("%r connected: interface %s, ports %s", agent, hello.iface, ",".join(map(str, hello.ports)))

    def _handle(self, agent: _Agent, event: Packets | Stats | Bye | Error, out: list[Packet]) -> None:
        counters = self._counters_of(agent)
        if isinstance(event, Packets):
            decode = agent.decoder.decode
            before = len(out)
            for ts_ns, ip in event.records:
                packet = decode(self._index, seconds(ts_ns), ip)
                self._index += 1
                if packet is not None:
                    out.append(packet)
            counters.records += len(event.records)
            counters.packets += len(out) - before
            counters.undecodable += len(event.records) - (len(out) - before)
        elif isinstance(event, Stats):
            counters.reported = event
        elif isinstance(event, Bye):
            counters.bye = event.reason
            log.info("%r said BYE: %s", agent, event.reason or "no reason given")

    def _counters_of(self, agent: _Agent) -> AgentCounters:
        name = agent.receiver.hello.name
        counters = self.counters.agents.get(name)
        if counters is None:
            counters = self.counters.agents[name] = AgentCounters()
        return counters

    def _refuse(self, agent: _Agent, reason: str) -> None:
        log.warning("%r broke the mirror protocol: %s; closing that connection", agent, reason)
        self.counters.refused += 1
        try:
            agent.sock.send(encode(Error(reason)))
        except OSError:
            pass
        self._drop(agent)

    def _drop(self, agent: _Agent) -> None:
        self._agents.discard(agent)
        self._epoll.unregister(agent.sock)
        agent.sock.close()
        if agent.decoder is not None:
            agent.decoder.close()
