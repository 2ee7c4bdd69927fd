"""A corpus of planted secrets, and the check that none of them leaks into what we write.

Every secret is a unique marker (``SECRET-<place>-<side>-...``), so finding one in any text is a
leak. ``planted_sessions()`` gives baseline and candidate exchanges that carry them wherever
traffic carries secrets: query strings, form bodies, request and response headers, JSON keys in
several spellings, an XML element, an HTML login form, a text body, and text protocols' AUTH
commands (Redis inline and RESP, SMTP AUTH PLAIN, IMAP LOGIN, FTP PASS). The candidate differs
from the baseline at each secret and at a harmless field (``plan``, ``PLAN``), so diffs, findings
and reports all meet them; ``VISIBLE`` are values that must still show, so a check that finds no
secret also proves the rendering showed the exchange. ``planted_problem()`` is a replay problem
whose detail and SUT log tail hold secrets.

Recorded baselines, reproducers and any other output can be checked the same way: write the
planted exchanges (or ``planted_streams()``: the raw client and server bytes of each session)
through them and call ``assert_no_secrets`` on the result.
"""

from __future__ import annotations

import json

from pytest_tcpcopy.compare import Cause, Exchange, HttpRequest, HttpResponse, RawMessage, ReplayProblem


_PLANTED: set[str] = set()


def _secret(place: str, side: str = "") -> str:
    secret = f"SECRET-{place}{'-' + side if side else ''}-7f3a9c"
    _PLANTED.add(secret)
    return secret


def _resp(*args: str) -> bytes:
    return f"*{len(args)}\r\n".encode() + b"".join(f"${len(a)}\r\n{a}\r\n".encode() for a in args)


QUERY = ("user_password", "new_password", "pwd", "auth_token")
FORM = ("csrf_token", "user_password", "pwd")
JSON_KEYS = ("user_password", "userPassword", "new_password", "auth_token", "csrf_token", "apiKey", "pwd", "session_id")
VISIBLE = ("premium", "free", "PLAN-A", "PLAN-B")


def _query() -> str:
    return "&".join(f"{key}={_secret('query-' + key)}" for key in QUERY) + "&page=2"


def _form() -> bytes:
    return "&".join(f"{key}={_secret('form-' + key)}" for key in FORM).encode() + b"&user=ada"


def _login_request() -> HttpRequest:
    headers = (
        ("Host", "sut"),
        ("Authorization", f"Bearer {_secret('authorization')}"),
        ("Cookie", f"sid={_secret('cookie')}"),
        ("Content-Type", "application/x-www-form-urlencoded"),
    )
    return HttpRequest("POST", f"/api/login?{_query()}", "HTTP/1.1", headers, _form())


def _json_response(side: str, plan: str) -> HttpResponse:
    body = {key: _secret("json-" + key, side) for key in JSON_KEYS}
    body["nested"] = {"credentials": {"secret": _secret("json-nested", side)}}
    body["plan"] = plan
    headers = (
        ("Content-Type", "application/json"),
        ("Set-Cookie", f"session={_secret('set-cookie', side)}; Path=/; HttpOnly"),
        ("X-CSRF-Token", _secret("csrf-header", side)),
    )
    return HttpResponse("HTTP/1.1", 200, "OK", headers, json.dumps(body).encode())


def _text_response(content_type: str, body: str) -> HttpResponse:
    return HttpResponse("HTTP/1.1", 200, "OK", (("Content-Type", content_type),), body.encode())


def _xml(side: str, plan: str) -> HttpResponse:
    return _text_response(
        "application/xml", f"<account><password>{_secret('xml', side)}</password><plan>{plan}</plan></account>"
    )


def _html_form(side: str, plan: str) -> HttpResponse:
    return _text_response(
        "text/html",
        f'<form><input type="hidden" name="csrf_token" value="{_secret("html-csrf", side)}">'
        f'<meta name="csrf-token" content="{_secret("html-meta", side)}"><p>{plan}</p></form>',
    )


def _text(side: str, plan: str) -> HttpResponse:
    return _text_response("text/plain", f"user_password={_secret('text', side)}&plan={plan}")


_RAW_REQUESTS = (
    _resp("AUTH", _secret("redis-resp")),
    _resp("AUTH", "ada", _secret("redis-resp-acl")),
    b"AUTH " + _secret("redis-inline").encode() + b"\r\n",
    b"AUTH PLAIN " + _secret("smtp-auth").encode() + b"\r\n",
    b"a001 LOGIN ada " + _secret("imap-login").encode() + b"\r\n",
    b"PASS " + _secret("ftp-pass").encode() + b"\r\n",
)


def _raw_response(side: str, plan: str) -> RawMessage:
    return RawMessage(f"+OK {plan}\r\npassword: {_secret('raw-line', side)}\r\n".encode())


def planted_sessions() -> dict[int, tuple[list[Exchange], list[Exchange]]]:
    """Session index -> (baseline exchanges, candidate exchanges), every secret planted."""
    login = _login_request()
    http = []
    for number, make in enumerate((_json_response, _xml, _html_form, _text)):
        http.append((Exchange(0, number, login, make("old", "premium"), "http"),
                     Exchange(0, number, login, make("new", "free"), "http")))  # fmt: skip
    raw = []
    for number, request in enumerate(_RAW_REQUESTS):
        raw.append((Exchange(1, number, RawMessage(request), _raw_response("old", "PLAN-A"), "raw"),
                    Exchange(1, number, RawMessage(request), _raw_response("new", "PLAN-B"), "raw")))  # fmt: skip
    return {
        0: ([b for b, _ in http], [c for _, c in http]),
        1: ([b for b, _ in raw], [c for _, c in raw]),
    }


def planted_problem() -> ReplayProblem:
    """A SUT that died, its detail and log tail holding secrets."""
    log = f"starting\nlogin user=ada password={_secret('log-password')}\nAuthorization: Bearer {_secret('log-bearer')}"
    return ReplayProblem(Cause.SUT_DIED, f"exit 1 after token={_secret('detail-token')}", log_tail=log)


def planted_streams(side: str = "baseline") -> dict[int, tuple[bytes, bytes]]:
    """Session index -> (client bytes, server bytes) of the ``baseline`` (or ``candidate``) side,
    as a capture holds them."""
    out = {}
    for session, (baseline, candidate) in planted_sessions().items():
        client, server = b"", b""
        for exchange in baseline if side == "baseline" else candidate:
            client += _wire(exchange.request)
            server += _wire(exchange.response)
        out[session] = (client, server)
    return out


def _wire(message: object) -> bytes:
    if isinstance(message, RawMessage):
        return message.data
    if isinstance(message, HttpRequest):
        head = f"{message.method} {message.target} {message.version}\r\n"
    else:
        head = f"{message.version} {message.status} {message.reason}\r\n"
    headers = [*message.headers, ("Content-Length", str(len(message.body)))]
    return (head + "".join(f"{n}: {v}\r\n" for n, v in headers) + "\r\n").encode() + message.body


def all_secrets() -> list[str]:
    """Every planted secret value."""
    planted_sessions()
    planted_problem()
    return sorted(_PLANTED)


def leaked(text: str) -> list[str]:
    """The planted secrets found in ``text``."""
    return [secret for secret in all_secrets() if secret in text]


def assert_no_secrets(text: str, where: str) -> None:
    found = leaked(text)
    assert not found, f"{len(found)} planted secret(s) leaked into {where}: {found}"
