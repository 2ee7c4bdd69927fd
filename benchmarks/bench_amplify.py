"""Amplification benchmark, run by hand as root: how far can one copier multiply the
benchmark captures into nginx before delivery drops below 99.9 %?

For each capture it replays with amplify factors 1, 2, 5, 10, 20, ... (--factors), on the same rig
as bench_replay.py, and prints per factor: % delivered (requests in nginx's access log / captured
requests x factor), requests/s, the achieved/offered ratio at the capture's own pace x --speed
(at --speed max there is no offered rate: achieved only) and the copier's CPU. It stops at the
first factor below 99.9 % and reports the largest one sustained. The anchor (C tcpcopy -n 5):
short 37 % delivered, keepalive 100 % at 41,834 requests/s.

    python benchmarks/bench_amplify.py [--factors 1,2,5,10] [--only short|keepalive] [--speed max]
"""

from __future__ import annotations

import argparse

from bench_replay import find_shared, run_once

from pytest_tcpcopy.capture import open_capture

TARGET_PCT = 99.9


def capture_span(path) -> float:
    """Seconds from the capture's first packet to its last."""
    first = last = None
    with open_capture(path) as reader:
        for pkt in reader:
            first = pkt.ts if first is None else first
            last = pkt.ts
    return (last - first) if first is not None else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--factors", default="1,2,5,10")
    parser.add_argument("--only", choices=["short", "keepalive"])
    parser.add_argument("--speed", default="max")
    parser.add_argument("--shared")
    args = parser.parse_args()
    shared = find_shared(args.shared)
    factors = [int(f) for f in args.factors.split(",")]
    for name in ("short", "keepalive"):
        if args.only and name != args.only:
            continue
        capture = shared / "bench" / f"{name}.pcap.gz"
        span = capture_span(capture)
        print(f"\n{name} at speed {args.speed} (capture spans {span:.2f} s)")
        print(f"  {'factor':>6} {'delivered %':>12} {'requests/s':>11} {'achieved/offered':>17} "
              f"{'copier CPU %':>13} {'aborted':>8}")  # fmt: skip
        best = None
        for factor in factors:
            r = run_once(capture, 10_000, factor, args.speed)
            aborted = sum(r["aborted"].values())
            offered = 10_000 * factor * float(args.speed) / span if args.speed != "max" and span else None
            ratio = f"{r['requests_per_s'] / offered:.3f}" if offered else "n/a (max)"
            print(f"  {factor:>6} {r['delivered_pct']:>12.2f} {r['requests_per_s']:>11.0f} {ratio:>17} "
                  f"{r['copier_cpu_pct']:>13.0f} {aborted:>8}")  # fmt: skip
            if r["delivered_pct"] < TARGET_PCT:
                break
            best = factor
        print(f"  largest factor with >= {TARGET_PCT} % delivered: {best}")


if __name__ == "__main__":
    main()
