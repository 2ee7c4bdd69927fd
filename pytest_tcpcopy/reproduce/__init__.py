"""Reproducers: each example of a finding as a folder someone can act on without the run.

A reproducer holds the exchange's session cut out of the capture (a small pcap), the request as a
curl command (HTTP) or raw bytes sent with socat/nc (other protocols), aimed at ``$SUT``, and the
lines that re-run the session against the SUT (``pytest SLICE::ITEM``, ``netns-run``,
``docker-run``), with a README that says what differed. Text files never hold a secret the
redaction recognises; the pcap holds raw bytes and is written by default only when the redaction
recognises no secret in the session (``SliceMode``).

    reproducers = write_reproducers(".tcpcopy/reproducers", [(capture, findings)], ReproducerConfig(target))
    reproducers.for_exchange(capture, session, number)  # -> Reproducer (its folder, files, commands)

Library code, no pytest: the plugin calls it once a capture's run is judged.
"""

from .model import (
    REPRODUCIBLE_CAUSES,
    Example,
    FindingRef,
    Reproducer,
    ReproducerConfig,
    ReproducerSet,
    SliceMode,
    choose_examples,
)
from .redaction import RedactedRequest, SecretScan, redact_request, scan_session
from .shell import CurlCommand, RerunLines, RerunTarget, curl_command, rerun_lines
from .slicing import SessionSlice, slice_sessions
from .writer import RunReproducers, write_capture_reproducers, write_index, write_reproducer, write_reproducers

__all__ = [
    "REPRODUCIBLE_CAUSES",
    "CurlCommand",
    "Example",
    "FindingRef",
    "RedactedRequest",
    "Reproducer",
    "ReproducerConfig",
    "ReproducerSet",
    "RerunLines",
    "RerunTarget",
    "RunReproducers",
    "SecretScan",
    "SessionSlice",
    "SliceMode",
    "choose_examples",
    "curl_command",
    "redact_request",
    "rerun_lines",
    "scan_session",
    "slice_sessions",
    "write_capture_reproducers",
    "write_index",
    "write_reproducer",
    "write_reproducers",
]
