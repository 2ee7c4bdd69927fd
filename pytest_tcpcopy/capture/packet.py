"""The decoded TCP segment that capture readers yield, and the TCP flag bits; defined in the kernel,
which decodes them."""

from ..kernel.packet import ACK, CWR, ECE, FIN, PSH, RST, SYN, URG, Packet

__all__ = ["ACK", "CWR", "ECE", "FIN", "PSH", "RST", "SYN", "URG", "Packet"]
