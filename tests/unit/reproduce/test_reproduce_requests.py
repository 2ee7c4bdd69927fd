"""The request of a reproducer, sent for real: request.sh run by sh against a loopback server
must deliver what the captured client sent (hop-by-hop headers and framing aside), whatever the
headers, target and body hold, and run nothing they hold."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from reprokit import Conversation, RecordingServer, write_capture

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from conftest import require_tools

from pytest_tcpcopy.capture import open_capture
from pytest_tcpcopy.compare import exchanges_from_capture
from pytest_tcpcopy.flows import assemble_sessions
from pytest_tcpcopy.reproduce import Example, ReproducerConfig, RerunTarget, SliceMode, write_reproducer

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
CONFIG = ReproducerConfig(RerunTarget(8080, "netns", command=("./app",)), slices=SliceMode.ALWAYS)


def reproduce(tmp_path: Path, turns: list[tuple[bytes, bytes]], number: int = 0, config=CONFIG):
    """A capture of one session of ``turns``, and the reproducer of its exchange ``number``."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    conversation = Conversation(("10.1.0.1", 40000), ("10.1.0.9", 8080), 100.0).handshake()
    for request, response in turns:
        conversation.turn(request, response)
    capture = write_capture(tmp_path / "one.pcap", conversation.close())
    with open_capture(capture) as reader:
        [session] = list(assemble_sessions(reader))
    exchange = exchanges_from_capture(session)[number]
    return write_reproducer(capture, Example(0, number, exchange.id), tmp_path / "out", config)


def send(reproducer, environment: dict | None = None, path: str | None = None) -> tuple[bytes, str]:
    """Run the reproducer's request.sh from another folder against a recording server; return
    the bytes the server received (one connection) and the script's output."""
    server = RecordingServer(RESPONSE + b"")
    try:
        env = {"PATH": path or os.environ["PATH"], "SUT": server.address, **(environment or {})}
        done = subprocess.run(["sh", str(reproducer.directory / "request.sh")], cwd="/", env=env, check=False,
                              capture_output=True, timeout=60)  # fmt: skip
        assert done.returncode == 0, done.stderr.decode()
    finally:
        server.close()
    [received] = server.received
    return received, done.stdout.decode("latin-1")


def parse(request: bytes) -> tuple[str, list[tuple[str, str]], bytes]:
    head, _, body = request.partition(b"\r\n\r\n")
    start, *lines = head.decode("latin-1").split("\r\n")
    headers = [(n.strip().lower(), v.strip()) for n, _, v in (line.partition(":") for line in lines)]
    return start, sorted(headers), body


@pytest.fixture(autouse=True)
def _curl():
    require_tools("curl", "sh")


HOSTILE_VALUES = [
    'it\'s "quoted" and $(touch pwned) and `touch pwned` ; touch pwned & | > x < y',
    "glob * ? [a-z] {a,b} ~ and a backslash \\ and 100% and $HOME and ${HOME}",
]


def test_hostile_headers_arrive_as_captured_and_run_nothing(tmp_path):
    headers = "".join(f"X-Hostile-{n}: {v}\r\n" for n, v in enumerate(HOSTILE_VALUES))
    headers += "X-Latin: caf\xe9 \x01 tab\there\r\nX-Empty:\r\nX-Dup: one\r\nX-Dup: two\r\n"
    request = f"GET /x HTTP/1.1\r\nHost: prod.example\r\n{headers}\r\n".encode("latin-1")
    reproducer = reproduce(tmp_path, [(request, RESPONSE)])
    received, out = send(reproducer)
    assert "200 OK" in out and "ok" in out
    assert parse(received) == parse(request)  # no User-Agent or Accept of curl's own either
    assert not Path("/pwned").exists() and not (reproducer.directory / "pwned").exists()
    assert (reproducer.directory / "request.headers").exists()  # the latin-1 and control bytes
    script = (reproducer.directory / "request.sh").read_text()
    assert "X-Hostile-0" in script and "X-Latin" not in script


@pytest.mark.parametrize(
    "target",
    [
        "/api/users/2",
        "/q?a=$(id)&b='x'&c=[1]&d=(2)&e=*&f=%20;g=,h=@",
        "/../../etc/passwd?x=./y",
        '/curly/{a}/"quoted"/|pipe|/^caret/<angle>/back\\slash',
        "/caf\xe9/\x7f",
        "http://prod.example:8080/absolute?x=1",
        "*",
    ],
)
def test_the_target_arrives_byte_for_byte(tmp_path, target):
    method = "OPTIONS" if target == "*" else "GET"
    request = f"{method} {target} HTTP/1.1\r\nHost: prod\r\nUser-Agent: u\r\nAccept: */*\r\n\r\n".encode("latin-1")
    received, _ = send(reproduce(tmp_path, [(request, RESPONSE)]))
    assert parse(received) == parse(request)


@pytest.mark.parametrize(
    ("body", "in_file"),
    [
        (b"a=1&b=2", False),
        (b"@/etc/passwd", True),  # curl reads @name as a file: never inline
        (b"it's $(touch pwned) `x`", False),
        (bytes(range(256)) * 3, True),
        (b"line one\nline two\r\n", True),
    ],
)
def test_bodies_arrive_byte_for_byte(tmp_path, body, in_file):
    head = f"PUT /upload HTTP/1.1\r\nHost: prod\r\nContent-Type: application/octet-stream\r\nContent-Length: {len(body)}\r\n\r\n"
    request = head.encode() + body
    reproducer = reproduce(tmp_path, [(request, RESPONSE)])
    received, _ = send(reproducer)
    assert parse(received) == parse(request)
    assert (reproducer.directory / "request.body").exists() is in_file
    assert not (reproducer.directory / "pwned").exists()


def test_methods_versions_and_framing(tmp_path):
    chunked = (b"POST /chunked HTTP/1.1\r\nHost: p\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive, X-Hop\r\n"
               b"X-Hop: 1\r\nKeep-Alive: timeout=5\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")  # fmt: skip
    turns = [
        (b"HEAD /h HTTP/1.1\r\nHost: p\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n"),
        (b"GET /g HTTP/1.0\r\nUser-Agent: old\r\n\r\n", RESPONSE),
        (b"GET /with-body HTTP/1.1\r\nHost: p\r\nContent-Length: 4\r\n\r\nbody", RESPONSE),
        (b"M-SEARCH * HTTP/1.1\r\nHost: p\r\n\r\n", RESPONSE),
        (chunked, RESPONSE),
    ]
    expected = [
        parse(turns[0][0]),
        parse(turns[1][0]),  # no Host: curl adds none
        parse(turns[2][0]),
        parse(turns[3][0]),
        ("POST /chunked HTTP/1.1", sorted([("host", "p"), ("content-length", "5")]), b"abcde"),
    ]
    for number, want in enumerate(expected):
        received, _ = send(reproduce(tmp_path / str(number), turns, number))
        assert parse(received) == want, number


def test_secret_headers_are_placeholders_an_environment_variable_fills(tmp_path):
    request = (b"GET /me HTTP/1.1\r\nHost: p\r\nAuthorization: Bearer real-secret-token-123456\r\n"
               b"Cookie: sid=real-cookie\r\nCookie: other=real-2\r\n\r\n")  # fmt: skip
    reproducer = reproduce(tmp_path, [(request, RESPONSE)])
    texts = "".join(p.read_text("latin-1") for p in reproducer.directory.iterdir() if p.name != "session.pcap")
    assert "real-secret" not in texts and "real-cookie" not in texts and "real-2" not in texts
    assert "TCPCOPY_AUTHORIZATION" in texts and "TCPCOPY_COOKIE_2" in texts
    received, _ = send(reproducer)
    _, headers, _ = parse(received)
    assert ("authorization", "[redacted]") in headers and ("cookie", "[redacted]") in headers
    received, _ = send(reproducer, {"TCPCOPY_AUTHORIZATION": "Bearer given", "TCPCOPY_COOKIE": "sid=a",
                                    "TCPCOPY_COOKIE_2": "other=b"})  # fmt: skip
    assert parse(received) == parse(request.replace(b"real-secret-token-123456", b"given")
                                     .replace(b"real-cookie", b"a").replace(b"real-2", b"b"))  # fmt: skip


def test_a_raw_request_goes_out_with_what_preceded_it(tmp_path):
    require_tools("socat")
    turns = [(b"+greeting\r\n"[:0], b"+OK ready\r\n"), (b"AUTH hunter2-secret\r\n", b"+OK\r\n"),
             (b"GET key\r\n", b"$5\r\nvalue\r\n")]  # fmt: skip
    reproducer = reproduce(tmp_path, turns, 2)
    files = {p.name: p.read_bytes() for p in reproducer.directory.iterdir()}
    assert files["request.bin"] == b"GET key\r\n"
    assert files["preceding.bin"] == b"AUTH [redacted]\r\n"
    assert b"hunter2" not in b"".join(v for k, v in files.items() if k != "session.pcap")
    expected = b"AUTH [redacted]\r\nGET key\r\n"
    received, _ = send(reproducer)  # socat
    assert received == expected
    bare = tmp_path / "bin"
    bare.mkdir()
    for tool in ("sh", "cat", "dirname", "python3"):
        (bare / tool).symlink_to(shutil.which(tool))
    received, _ = send(reproducer, path=str(bare))  # neither socat nor nc: python3
    assert received == expected


def test_a_server_greeting_is_read_with_nothing_sent(tmp_path):
    reproducer = reproduce(tmp_path, [(b"", b"220 smtp ready\r\n"), (b"QUIT\r\n", b"221 bye\r\n")], 0)
    assert (reproducer.directory / "request.bin").read_bytes() == b""
    assert not (reproducer.directory / "preceding.bin").exists()
    received, out = send(reproducer)
    assert received == b"" and "200 OK" in out
