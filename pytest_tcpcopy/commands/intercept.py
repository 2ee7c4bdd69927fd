"""``pytest-tcpcopy intercept``: run the NFQUEUE intercept inside the SUT's network namespace.

Order matters for safety: the queue is bound before the rules go in (nothing queued is lost), the
rules go in before "ready" is printed, and on exit (normal, SIGTERM, SIGINT) the rules come out
before the queue is unbound. stdout carries exactly two JSON lines for harnesses: ``ready`` once
serving, ``stopped`` with the counters at exit; logs go to stderr.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import os
import signal
import sys

from ..channel.protocol import DEFAULT_PORT
from ..endpoint import Endpoint
from ..errors import UsageError
from ..intercept import rules
from ..intercept.queue import ResponseQueue
from ..intercept.server import InterceptServer

log = logging.getLogger("pytest_tcpcopy.intercept")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "intercept",
        help="catch the SUT's responses to replayed clients (run inside the SUT's network namespace)",
        description="Queue the SUT's TCP segments to replayed clients via NFQUEUE, report them to the "
        "copiers that registered them, and drop them. Needs CAP_NET_ADMIN in the SUT's namespace.",
    )
    parser.add_argument("--port", type=int, action="append", default=[], metavar="N",
                        help="service port of the SUT (repeatable)")
    parser.add_argument("--capture-responses", action="store_true",
                        help="send whole segments (payload included, up to 4016 bytes each), not only headers")
    parser.add_argument("--listen", default=f"0.0.0.0:{DEFAULT_PORT}", metavar="ADDR:PORT",
                        help=f"where copiers connect (default 0.0.0.0:{DEFAULT_PORT})")
    parser.add_argument("--queue-num", type=int, default=0, metavar="Q", help="NFQUEUE number (default 0)")
    parser.add_argument("--client-range", action="append", default=[], metavar="CIDR",
                        help=f"replayed client addresses (repeatable; default {rules.DEFAULT_CLIENT_RANGE})")
    parser.add_argument("--reap", action="store_true",
                        help="first remove rules and routes left by killed intercepts; alone, only that")
    parser.set_defaults(func=run)


def _validate(args: argparse.Namespace) -> tuple[Endpoint, list[str]]:
    for port in args.port:
        if not 0 < port < 65536:
            raise UsageError(f"--port {port}: expected 1..65535")
    if not 0 <= args.queue_num < 65536:
        raise UsageError(f"--queue-num {args.queue_num}: expected 0..65535")
    ranges = args.client_range or [rules.DEFAULT_CLIENT_RANGE]
    for cidr in ranges:
        try:
            ipaddress.ip_network(cidr)
        except ValueError as exc:
            raise UsageError(f"--client-range {cidr}: {exc}") from None
    try:
        listen = Endpoint.parse(args.listen)
    except ValueError as exc:
        raise UsageError(f"--listen: {exc}") from None
    return listen, ranges


def _emit(event: str, **fields: object) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="intercept[%(process)d]: %(message)s")
    if args.reap:
        removed = rules.reap()
        _emit("reaped", removed=removed)
        if not args.port:
            return 0
    if not args.port:
        raise UsageError("--port is required: the SUT's service port(s) whose responses to intercept")
    listen, ranges = _validate(args)
    server = InterceptServer(listen, name=f"intercept-{os.getpid()}", capture_payload=args.capture_responses)
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):  # from here on, a signal means "clean up"
        signal.signal(signum, lambda *_: server.stop())
    try:
        queue = ResponseQueue(args.queue_num, server.handle_segment, capture_payload=args.capture_responses)
        try:
            ruleset = rules.install(args.port, args.queue_num, ranges)
            try:
                _emit("ready", listen=str(server.address), ports=args.port, queue=args.queue_num,
                      chain=ruleset.chain, client_ranges=ranges, capture_responses=args.capture_responses)
                server.serve(queue)
            finally:
                ruleset.remove()
        finally:
            stats = queue.stats()
            queue.close()
    finally:
        server.close()
    counters = server.counters.as_dict()
    if stats is not None:
        counters.update(queue_dropped=stats.queue_dropped, user_dropped=stats.user_dropped)
    log.info("stopped: %s", " ".join(f"{k}={v}" for k, v in counters.items()))
    _emit("stopped", **counters)
    return 0
