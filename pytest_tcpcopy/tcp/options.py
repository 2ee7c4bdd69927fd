"""TCP options the translator reads and writes: MSS, window scale, SACK-permitted, timestamps.

Captured options are kept as raw bytes until needed. Only the SYN is sent with the client's own
options; every later segment gets options built here (just the timestamp when negotiated),
because captured SACK blocks and TSecr values refer to the production server's sequence space
and clock, not the SUT's.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from pytest_tcpcopy.capture.inplace import be32

EOL = 0
NOP = 1
MSS = 2
WSCALE = 3
SACK_PERMITTED = 4
SACK = 5
TIMESTAMP = 8

_TS_PREFIX = b"\x01\x01\x08\x0a"  # NOP, NOP, kind 8, length 10: the usual aligned layout
_TS_ALIGNED = struct.Struct("!4sII")
_MSS = struct.Struct("!BBH")

_new_tuple = tuple.__new__  # TcpOptions(...) without NamedTuple.__new__'s Python-level frame

TIMESTAMP_OPTION_LEN = 12
MAX_WSCALE = 14  # RFC 7323 2.3: larger shift counts are treated as 14

# The module's own copies of the kinds: compiled, C constants (options.pxd), so that the walk
# below compares C ints instead of making an int object per option byte.
_EOL, _NOP, _MSS_KIND, _WSCALE, _SACK_PERMITTED, _TIMESTAMP = EOL, NOP, MSS, WSCALE, SACK_PERMITTED, TIMESTAMP
_MAX_WSCALE = MAX_WSCALE


class TcpOptions(NamedTuple):
    """Parsed options of one segment; None or False when absent."""

    mss: int | None = None
    wscale: int | None = None
    sack_permitted: bool = False
    ts_val: int | None = None
    ts_ecr: int | None = None


def parse_options(raw: bytes | bytearray | memoryview) -> TcpOptions:
    """Decode the options the translator cares about; malformed trailing bytes are ignored
    (a real stack stops at the first malformed option as well)."""
    data = raw if type(raw) is bytes else bytes(raw)  # any bytes-like; compiled: C reads below
    mss = wscale = ts_val = ts_ecr = None
    sack_permitted = False
    i, n = 0, len(data)
    while i < n:
        kind = data[i]
        if kind == _EOL:
            break
        if kind == _NOP:
            i += 1
            continue
        if i + 1 >= n:
            break
        length = data[i + 1]
        if length < 2 or i + length > n:
            break
        if kind == _MSS_KIND and length == 4:
            mss = (data[i + 2] << 8) | data[i + 3]
        elif kind == _WSCALE and length == 3:
            shift = data[i + 2]
            wscale = shift if shift < _MAX_WSCALE else _MAX_WSCALE  # noqa: FURB136 - min() is a Python call, compiled too
        elif kind == _SACK_PERMITTED and length == 2:
            sack_permitted = True
        elif kind == _TIMESTAMP and length == 10:
            ts_val, ts_ecr = be32(data, i + 2), be32(data, i + 6)
        i += length
    return _new_tuple(TcpOptions, (mss, wscale, sack_permitted, ts_val, ts_ecr))


def timestamp_of(raw: bytes | bytearray | memoryview) -> tuple[int, int] | None:
    """(TSval, TSecr) of a segment's options, or None; fast for the usual aligned layout."""
    data = raw if type(raw) is bytes else bytes(raw)  # any bytes-like; compiled: C reads below
    n = len(data)
    if n >= 12 and data[0] == _NOP and data[1] == _NOP and data[2] == _TIMESTAMP and data[3] == 10:
        return be32(data, 4), be32(data, 8)
    if not n:
        return None
    opts = parse_options(data)
    return None if opts.ts_val is None else (opts.ts_val, opts.ts_ecr)


def timestamp_option(ts_val: int, ts_ecr: int) -> bytes:
    """NOP, NOP, TS(ts_val, ts_ecr): 12 bytes, keeping the header 4-byte aligned."""
    return _TS_ALIGNED.pack(_TS_PREFIX, ts_val, ts_ecr)


def mss_option(mss: int) -> bytes:
    """The 4-byte MSS option (a fake SYN carries nothing else)."""
    return _MSS.pack(MSS, 4, mss)
