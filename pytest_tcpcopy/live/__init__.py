"""Live packet sources: AF_PACKET capture on an interface, and the mirror agent and receiver that
stream a production host's packets to the test runner; recording what they see into capture files."""

from .agent import MirrorAgent
from .capture import LiveCapture, LiveCounters
from .capture_file import CaptureFileWriter, SavedRecording, capture_file_kind, save_recording
from .listener import AgentCounters, ListenerCounters, MirrorListener
from .source import LiveSource, MirrorSource, PacketSource, Recording, record_to_pcap

__all__ = [
    "AgentCounters",
    "CaptureFileWriter",
    "ListenerCounters",
    "LiveCapture",
    "LiveCounters",
    "LiveSource",
    "MirrorAgent",
    "MirrorListener",
    "MirrorSource",
    "PacketSource",
    "Recording",
    "SavedRecording",
    "capture_file_kind",
    "record_to_pcap",
    "save_recording",
]
