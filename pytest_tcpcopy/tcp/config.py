"""TranslatorConfig: the knobs of one replayed session, shared by the translator and its parts."""

from __future__ import annotations

from dataclasses import dataclass

from pytest_tcpcopy.errors import UsageError

RESPONSE_TIMEOUT = 5.0  # seconds the SUT may make no progress on an awaited response
QUIET_FLOOR = 1.0  # the least silence that ends a response by the last resort (see gate.py)


@dataclass(frozen=True)
class TranslatorConfig:
    pipeline: bool = False  # tcpcopy -W: send requests without waiting for responses
    mss: int = 1460  # MSS in fake SYNs, and the largest segment we send
    rto: float = 0.2  # initial retransmission timeout (s), doubled per timeout up to RTO_MAX
    establish_timeout: float = 3.0  # no SYN-ACK by then: Aborted(NOT_ESTABLISHED)
    idle_timeout: float = 60.0  # no SUT progress while waiting on it: Aborted(IDLE_TIMEOUT)
    # An awaited response that makes no progress for this long is cut: Aborted(RESPONSE_TIMEOUT).
    response_timeout: float = RESPONSE_TIMEOUT
    quiet_floor: float = QUIET_FLOOR  # the last resort's least silence (gate.py)
    capture_payload: bool = False  # report SUT payload bytes in ResponseData (when present)
    max_reconnects: int = 3
    close_linger: float = 1.0  # after our FIN: how long the SUT may stay silent before a RST

    def __post_init__(self) -> None:
        if not 64 <= self.mss <= 65495:
            raise UsageError(f"TranslatorConfig.mss={self.mss}: expected 64..65495")
        for name in ("rto", "establish_timeout", "idle_timeout", "response_timeout", "close_linger"):
            if not getattr(self, name) > 0:
                raise UsageError(f"TranslatorConfig.{name}={getattr(self, name)}: expected > 0")
        if not self.quiet_floor >= 0:
            raise UsageError(f"TranslatorConfig.quiet_floor={self.quiet_floor}: expected >= 0")
        if self.max_reconnects < 0:
            raise UsageError(f"TranslatorConfig.max_reconnects={self.max_reconnects}: expected >= 0")
