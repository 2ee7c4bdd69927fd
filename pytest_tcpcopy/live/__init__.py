"""Live packet sources: AF_PACKET capture on an interface, and the mirror agent and receiver that
stream a production host's packets to the test runner."""

from .agent import MirrorAgent
from .capture import LiveCapture, LiveCounters
from .listener import AgentCounters, ListenerCounters, MirrorListener
from .source import LiveSource, MirrorSource, PacketSource, Recording, record_to_pcap

__all__ = [
    "AgentCounters",
    "ListenerCounters",
    "LiveCapture",
    "LiveCounters",
    "LiveSource",
    "MirrorAgent",
    "MirrorListener",
    "MirrorSource",
    "PacketSource",
    "Recording",
    "record_to_pcap",
]
