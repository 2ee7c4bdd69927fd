"""The shell lines of a reproducer: the request as curl (HTTP) or raw bytes through socat/nc, and
the lines that re-run the session's capture file against the SUT.

Every line is POSIX shell, quoted with ``shlex.quote``, and sends traffic only to ``$SUT`` (the
``host:port`` the user sets), never to the capture's own server. The curl command sends what the
client sent, as far as curl lets it:

- the method, the target byte for byte (``--path-as-is``, or ``--request-target`` for anything
  curl's URL parser would touch), ``--http1.0``/``--http1.1`` as captured; ``--globoff``, so
  brackets (``[redacted]``) are not a URL pattern;
- every header in order except the hop-by-hop ones (``HOP_BY_HOP`` and those the Connection header
  names) and Content-Length (curl frames the body itself); curl's own User-Agent, Accept, Host,
  Content-Type and Expect are suppressed when the capture had none; an empty value is sent as
  ``Name;`` (curl's syntax for it); headers holding bytes a shell line should not carry (control
  characters, non-ASCII) go to a file read by ``-H @file``;
- a secret header (see ``redaction``) as the value of an environment variable
  (``TCPCOPY_AUTHORIZATION``) when set, else ``[redacted]``;
- the body inline when short printable ASCII, else from a file (``--data-binary @file``).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from ..compare import REDACTED, Redaction
from ..errors import UsageError
from ..settings import Settings
from .redaction import RedactedHeader, RedactedRequest

SUT = '"${SUT:?set SUT to host:port of the system under test}"'
HOP_BY_HOP = frozenset((
    "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
    "proxy-authorization", "proxy-authenticate",
))  # fmt: skip
_CURL_DEFAULTS = ("host", "user-agent", "accept")  # headers curl adds unless told not to
_CURL_BODY_DEFAULTS = ("content-type", "expect")  # ... and those it adds to a request with a body
_INLINE_BODY = re.compile(rb"[ -~]{1,120}")  # short printable ASCII
_PRINTABLE = re.compile(r"[ -~]*")
_SIMPLE_TARGET = re.compile(r"/[A-Za-z0-9\-._~:/?@!$&'()*+,;=%\[\]]*")  # curl's URL parser leaves it alone
_ENV_NAME = re.compile(r"[^A-Za-z0-9]+")
CONTINUATION = " \\\n  "


@dataclass(frozen=True, slots=True)
class CurlCommand:
    """The curl command (``text``: one argument group per line) and the files it reads:
    ``headers_file`` bytes for ``-H @request.headers`` (None: every header is inline),
    ``body_file`` bytes for ``--data-binary @request.body`` (None: no body file), and
    ``variables``: the environment variables that may carry the secret header values."""

    text: str
    headers_file: bytes | None
    body_file: bytes | None
    variables: tuple[str, ...]
    dropped: tuple[str, ...]  # hop-by-hop header names left out


HEADERS_FILE = "request.headers"
BODY_FILE = "request.body"


def curl_command(request: RedactedRequest) -> CurlCommand:
    """The curl command that sends ``request`` to ``$SUT`` (see the module comment)."""
    groups = [["curl", "--globoff", "--silent", "--show-error", "--include", _version_flag(request.version)]]
    has_body = bool(request.body)
    method = request.method
    if method == "HEAD" and not has_body:
        groups.append(["--head"])
    elif not ((method == "GET" and not has_body) or (method == "POST" and has_body)):
        groups.append(["--request", shlex.quote(method)])
    if _SIMPLE_TARGET.fullmatch(request.target):
        groups.append(["--path-as-is", "http://" + SUT + shlex.quote(request.target)])
    else:
        groups.append(["--request-target", shlex.quote(request.target), "http://" + SUT + "/"])
    sent, dropped = _sent_headers(request.headers)
    present = {h.name.lower() for h in sent}
    groups += [["-H", shlex.quote(f"{name}:")] for name in _suppressed(present, has_body)]
    variables, seen = [], {}
    in_file = [h for h in sent if h.value is not None and not _PRINTABLE.fullmatch(h.name + h.value)]
    headers_file = None
    if in_file:
        headers_file = b"".join(_header_field(h).encode("latin-1") + b"\r\n" for h in in_file)
        groups.append(["-H", "@" + HEADERS_FILE])
    for header in sent:
        if header.value is None:
            variable = _variable(header.name, seen)
            variables.append(variable)
            groups.append(["-H", shlex.quote(f"{header.name}: ") + f'"${{{variable}-{REDACTED}}}"'])
        elif header not in in_file:
            groups.append(["-H", shlex.quote(_header_field(header))])
    body_file = None
    if has_body:
        assert request.body is not None
        if _INLINE_BODY.fullmatch(request.body) and not request.body.startswith(b"@"):
            groups.append(["--data-binary", shlex.quote(request.body.decode("ascii"))])
        else:
            body_file = request.body
            groups.append(["--data-binary", "@" + BODY_FILE])
    text = CONTINUATION.join(" ".join(group) for group in groups)
    return CurlCommand(text, headers_file, body_file, tuple(variables), tuple(dropped))


def _version_flag(version: str) -> str:
    return "--http1.0" if version.upper() == "HTTP/1.0" else "--http1.1"


def _sent_headers(headers: tuple[RedactedHeader, ...]) -> tuple[list[RedactedHeader], list[str]]:
    """The headers curl is given, and the names of those dropped as hop-by-hop or framing."""
    named = {token.strip().lower() for h in headers if h.name.lower() == "connection" and h.value
             for token in h.value.split(",")}  # fmt: skip
    skip = HOP_BY_HOP | named | {"content-length"}
    sent, dropped = [], []
    for header in headers:
        if header.name.lower() in skip:
            dropped.append(header.name)
        else:
            sent.append(header)
    return sent, dropped


def _suppressed(present: set[str], has_body: bool) -> list[str]:
    defaults = _CURL_DEFAULTS + (_CURL_BODY_DEFAULTS if has_body else ())
    return [name.title() for name in defaults if name not in present]


def _header_field(header: RedactedHeader) -> str:
    return f"{header.name};" if not header.value else f"{header.name}: {header.value}"


def _variable(name: str, seen: dict[str, int]) -> str:
    base = "TCPCOPY_" + _ENV_NAME.sub("_", name).strip("_").upper()
    seen[base] = seen.get(base, 0) + 1
    return base if seen[base] == 1 else f"{base}_{seen[base]}"


# Sends the files named after the address, half-closes, prints what comes back until the SUT
# closes or WAIT seconds pass: what ``socat -t WAIT`` does, for a machine with neither socat nor nc.
_PYTHON_SENDER = """import socket, sys, time
host, _, port = sys.argv[1].rpartition(":")
s = socket.create_connection((host.strip("[]"), int(port)), 10)
for name in sys.argv[2:]:
    with open(name, "rb") as f:
        s.sendall(f.read())
s.shutdown(socket.SHUT_WR)
end = time.monotonic() + WAIT
while (left := end - time.monotonic()) > 0:
    s.settimeout(left)
    try:
        data = s.recv(65536)
    except socket.timeout:
        break
    if not data:
        break
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()
"""
RAW_WAIT = 5  # seconds a raw request waits for the SUT after its last byte


def raw_command(files: Sequence[str]) -> str:
    """The lines that send the concatenated ``files`` to ``$SUT`` and print what comes back, with
    socat when installed, else nc, else python3; the SUT has ``RAW_WAIT`` seconds after the last
    byte (the sending side is closed then, as socat does)."""
    feed = f"cat {' '.join(files)} | " if files else ""
    stdin = "" if files else " < /dev/null"
    python = _PYTHON_SENDER.replace("WAIT", str(RAW_WAIT))
    arguments = " ".join(['"$SUT"', *files])
    return (
        f"SUT={SUT}\n"
        "if command -v socat >/dev/null 2>&1; then\n"
        f'  {feed}socat -t {RAW_WAIT} STDIO "TCP:$SUT"{stdin}\n'
        "elif command -v nc >/dev/null 2>&1; then\n"
        f'  {feed}nc -q {RAW_WAIT} "${{SUT%:*}}" "${{SUT##*:}}"{stdin}\n'
        "else\n"
        f"  python3 -c {shlex.quote(python)} {arguments}\n"
        "fi"
    )


def raw_lines(files: Sequence[str]) -> str:
    """The socat and nc lines of ``raw_command``, for a reader."""
    feed = f"cat {' '.join(files)} | " if files else ""
    stdin = "" if files else " < /dev/null"
    return (f'{feed}socat -t {RAW_WAIT} STDIO "TCP:$SUT"{stdin}\n'
            f'{feed}nc -q {RAW_WAIT} "${{SUT%:*}}" "${{SUT##*:}}"{stdin}')  # fmt: skip


@dataclass(frozen=True, slots=True)
class RerunTarget:
    """How the run that found the difference ran and judged its SUT, for the lines that re-run a
    session: the ``backend`` (docker or netns) with its ``image`` or ``command``, the SUT's
    ``port`` and readiness path (``http_path``), the ``baseline`` (as ``--tcpcopy-baseline``
    takes it), the diff paths it ignored (``ignore``) and the capture's server ports
    (``capture_ports``: they number the sessions, so a slice is read with the same)."""

    port: int
    backend: str = "docker"
    image: str | None = None
    command: tuple[str, ...] = ()
    baseline: str = "capture"
    capture_ports: tuple[int, ...] = ()
    ignore: tuple[str, ...] = ()
    http_path: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> RerunTarget:
        """The target a plugin run's settings describe; UsageError without the SUT's port."""
        if settings.port is None:
            raise UsageError("reproducers need the SUT's port: set --tcpcopy-port / tcpcopy_port")
        return cls(settings.port, settings.backend, settings.image, settings.command, str(settings.baseline),
                   settings.filter.ports, settings.ignore, settings.http_path)  # fmt: skip


@dataclass(frozen=True, slots=True)
class RerunLines:
    """Shell lines that replay a reproducer's capture file (run from the reproducer's folder)."""

    pytest: str  # judges the one exchange again, as the run did
    pytest_all: str  # every exchange of the capture file
    rig: str  # netns-run or docker-run: the replay alone, the SUT's responses in its JSON
    notes: tuple[str, ...]


def rerun_lines(
    capture: str, item: str, target: RerunTarget, redaction: Redaction, *, session: int | None = None
) -> RerunLines:
    """The re-run lines for the capture file ``capture`` whose pytest item ``item`` is the
    exchange; ``session`` picks that session out of a whole capture (the rig's ``--sessions``).
    Values from the run's settings are scrubbed of secrets (a token in a SUT command line)."""
    notes = []
    item = redaction.scrub_text(item)
    baseline = target.baseline
    if baseline.startswith("dir:"):
        notes.append("the run's recorded baseline (dir:) is not used here (it is keyed by capture "
                     "and session index): these lines compare with the capture's responses")  # fmt: skip
        baseline = "capture"
    options = ["--tcpcopy-backend", target.backend]
    if target.backend == "netns" and target.command:
        notes.append("the SUT command is the run's: a relative path in it is relative to the folder the run "
                     "started in, run these lines where it resolves (the capture file's path adjusted)")  # fmt: skip
    if target.backend == "netns":
        options += ["--tcpcopy-command", shlex.join(target.command) or "SUT_COMMAND"]
    else:
        options += ["--tcpcopy-image", target.image or "IMAGE"]
    options += ["--tcpcopy-port", str(target.port), "--tcpcopy-baseline", baseline]
    if target.capture_ports:
        options += ["--tcpcopy-filter", "port=" + ",".join(map(str, target.capture_ports))]
    for path in target.ignore:
        options += ["--tcpcopy-ignore", path]
    if target.http_path:
        options += ["--tcpcopy-http-path", target.http_path]
    options += ["--tcpcopy-reproducers", "off"]  # a re-run never writes over the reproducers it runs from
    tail = _scrubbed(options, redaction)
    pytest = f"pytest {shlex.quote(f'{capture}::{item}')} {tail}"
    whole = f"pytest {shlex.quote(capture)} {tail}"
    extra = [arg for port in target.capture_ports for arg in ("--capture-port", str(port))]
    if session is not None:
        extra += ["--sessions", str(session)]
    extra += ["--capture-responses", "--json"]
    if target.backend == "netns":
        rig = ["pytest-tcpcopy", "netns-run", capture, "--port", str(target.port), *extra,
               "--", *(target.command or ("SUT_COMMAND",))]  # fmt: skip
    else:
        rig = ["pytest-tcpcopy", "docker-run", capture, "--image", target.image or "IMAGE", "--port", str(target.port)]
        if baseline.startswith("image:"):
            rig += ["--baseline-image", baseline.removeprefix("image:")]
        if target.http_path:
            rig += ["--http-path", target.http_path]
        rig += extra
    return RerunLines(pytest, whole, _scrubbed(rig, redaction), tuple(notes))


def _scrubbed(argv: list[str], redaction: Redaction) -> str:
    return redaction.scrub_text(shlex.join(argv))
