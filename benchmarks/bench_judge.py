"""The plugin end to end at scale: pytest on a capture replayed into nginx on the netns backend,
judged against production's responses in the capture (run by hand, as root; prints figures).

    python benchmarks/bench_judge.py [--repeat 3] [--scale CAPTURE] [--items exchange|endpoint]

Runs, each ``--repeat`` times, alternating:

- ``same``: shared/bench/short.pcap.gz (10,000 sessions of one GET each) into nginx serving the
  page production served: every exchange the same;
- ``regression``: the same capture into nginx serving the page with one byte changed: one
  finding, 10,000 exchanges;
- ``scale`` (with ``--scale``): a capture of 100 copies of short.pcap.gz (1,000,000 exchanges,
  ``benchmarks/make_scale_captures.py scale 100 OUT``) with ``--tcpcopy-items=endpoint``, into
  the changed page.

Per run: wall time of the pytest process, its peak RSS (VmHWM, read by a plugin as pytest ends),
the judge's figures (exchanges judged, seconds spent judging, exchanges judged per second of it;
the captured sessions it read ahead and the sessions it waited on, at most), terminal lines,
verdicts and findings. The SUT is nginx-light, one worker, as shared/bench/README.md describes.

``--judge-only``: the judge alone, without a replay competing for the CPUs: short.pcap.gz is
replayed once into nginx (``netns-run --json``), then its result is judged ``--repeat`` times by a
``StreamingJudge`` in this process, session by session, as the copier would report them.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from shared_captures import bench_dir

REPO = Path(__file__).resolve().parents[1]
PAGE = b"<html><body>" + b"anchor-payload-" * 64 + b"</body></html>\n"  # what production served
CHANGED = PAGE.replace(b"anchor-payload-</body>", b"anchor-payloaD-</body>")  # one byte
NGINX_CONF = """
user root;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log;
events {{ worker_connections 65535; }}
http {{
    access_log off;
    keepalive_timeout 65;
    keepalive_requests 100000;
    server {{
        listen 8080 backlog=65535;
        root {dir}/www;
    }}
}}
"""
PLUGIN = '''
import json, os
from pathlib import Path


def pytest_unconfigure(config):
    from pytest_tcpcopy.plugin_state import STATE_KEY

    state = config.stash.get(STATE_KEY, None)
    runs = [] if state is None else state.runs
    hwm = next(line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("VmHWM"))
    figures = [run.judging for run in runs if run.judging is not None]
    Path(os.environ["BENCH_OUT"]).write_text(json.dumps({
        "peak_rss_mb": int(hwm.split()[1]) / 1024,
        "exchanges": sum(f.exchanges for f in figures),
        "judge_seconds": sum(f.seconds for f in figures),
        "held": max((f.held for f in figures), default=0),
        "pending": max((f.pending for f in figures), default=0),
        "counts": [{s.value: n for s, n in run.verdicts.counts.items()} for run in runs],
        "findings": [[(f.key.render(), f.count) for f in run.verdicts.findings.findings()] for run in runs],
        "replay_elapsed": sum(run.candidate.elapsed for run in runs),
    }))
'''


def site(root: Path, name: str, page: bytes) -> str:
    """An nginx command serving ``page`` at every path under ``root/name``."""
    folder = root / name
    (folder / "www").mkdir(parents=True)
    (folder / "www" / "index.html").write_bytes(page)
    (folder / "nginx.conf").write_text(NGINX_CONF.format(dir=folder))
    return f"nginx -c {folder / 'nginx.conf'} -g 'daemon off;'"


def run_pytest(work: Path, capture: Path, sut: str, *extra: str) -> dict:
    out = work / "figures.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(work), str(REPO), os.environ.get("PYTHONPATH", "")]),
           "BENCH_OUT": str(out)}  # fmt: skip
    argv = [sys.executable, "-m", "pytest", str(capture), "-p", "benchplugin", "-p", "no:cacheprovider",
            "-p", "no:hypothesispytest", "--tcpcopy-backend", "netns", "--tcpcopy-port", "8080",
            "--tcpcopy-command", sut, *extra]  # fmt: skip
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True, timeout=7200)
    wall = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        sys.exit(f"pytest failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    figures = json.loads(out.read_text())
    figures.update(wall=wall, lines=len(proc.stdout.splitlines()), summary=proc.stdout.splitlines()[-1])
    return figures


def judge_only(repeat: int, work: Path, sut: str) -> None:
    from pytest_tcpcopy.baselines import strategy_for
    from pytest_tcpcopy.compare import DiffConfig
    from pytest_tcpcopy.judging.collector import fewer_collections
    from pytest_tcpcopy.judging.stream import StreamingJudge
    from pytest_tcpcopy.judging.verdicts import RunVerdicts
    from pytest_tcpcopy.model import ReplayRun, index_capture
    from pytest_tcpcopy.replay.results import ReplayResult, SessionResult
    from pytest_tcpcopy.settings import Settings

    short = bench_dir() / "short.pcap.gz"
    proc = subprocess.run([sys.executable, "-m", "pytest_tcpcopy", "netns-run", str(short), "--port", "8080", "--json",
                           "--capture-responses", "--", *shlex.split(sut)],
                          capture_output=True, text=True, timeout=600, cwd=work)  # fmt: skip
    if proc.returncode != 0:
        sys.exit(f"netns-run failed ({proc.returncode}): {proc.stderr[-2000:]}")
    documents = json.loads(proc.stdout)["sessions"]
    settings = Settings().with_overrides({"port": 8080}, "bench")
    start = time.perf_counter()
    index = index_capture(short, settings, refs=False)
    print(f"index: {time.perf_counter() - start:.2f} s")
    for round_ in range(repeat):
        results = [SessionResult.from_json(doc) for doc in documents]
        run = ReplayRun(index, settings, ReplayResult([], 0.0), verdicts=RunVerdicts(per_exchange=False))
        judge = StreamingJudge(run, strategy_for(settings), DiffConfig(), ["candidate"])
        with fewer_collections():  # as the runner judges
            for result in results:
                judge.on_session("candidate", result)
            judge.finish()
        figures = judge.figures()
        print(f"[{round_ + 1}] judge only: {figures.exchanges} exchanges in {figures.seconds:.2f} s "
              f"({figures.rate:,.0f}/s), held <= {figures.held}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--scale", type=Path, default=None, help="a capture of >= 1,000,000 exchanges")
    parser.add_argument("--items", default="exchange", help="item kind of the 10,000-exchange runs")
    parser.add_argument("--only", choices=("same", "regression", "scale"), action="append", default=None)
    parser.add_argument("--judge-only", action="store_true", help="time the judge alone (see above)")
    args = parser.parse_args()
    if args.judge_only:
        with tempfile.TemporaryDirectory(prefix="bench-judge-") as tmp:
            judge_only(args.repeat, Path(tmp), site(Path(tmp), "v1", PAGE))
        return
    short = bench_dir() / "short.pcap.gz"
    wanted = args.only or ["same", "regression", *(["scale"] if args.scale else [])]
    results: dict[str, list[dict]] = {name: [] for name in wanted}
    with tempfile.TemporaryDirectory(prefix="bench-judge-") as tmp:
        work = Path(tmp)
        (work / "benchplugin.py").write_text(PLUGIN)
        (work / "tox.ini").write_text("[pytest]\n")
        same, changed = site(work, "v1", PAGE), site(work, "v2", CHANGED)
        runs = {
            "same": (short, same, ("--tcpcopy-items", args.items)),
            "regression": (short, changed, ("--tcpcopy-items", args.items)),
            "scale": (args.scale, changed, ("--tcpcopy-items", "endpoint")),
        }
        for round_ in range(args.repeat):
            for name in wanted:
                capture, sut, extra = runs[name]
                figures = run_pytest(work, capture, sut, *extra)
                results[name].append(figures)
                rate = figures["exchanges"] / figures["judge_seconds"] if figures["judge_seconds"] else 0
                print(f"[{round_ + 1}] {name}: {figures['wall']:.1f} s wall, {figures['peak_rss_mb']:.0f} MB peak RSS, "
                      f"{figures['exchanges']} exchanges judged in {figures['judge_seconds']:.1f} s ({rate:,.0f}/s), "
                      f"replay {figures['replay_elapsed']:.1f} s, held <= {figures['held']}, pending <= "
                      f"{figures['pending']}, {figures['lines']} terminal lines; {figures['summary'].strip('= ')}",
                      flush=True)  # fmt: skip
                for finding, count in (figures["findings"][0] if figures["findings"] else [])[:3]:
                    print(f"      finding: {count} x {finding}")
    print("\nmedians:")
    for name, runs_ in results.items():
        med = {k: statistics.median(r[k] for r in runs_) for k in ("wall", "peak_rss_mb", "lines")}
        rates = [r["exchanges"] / r["judge_seconds"] for r in runs_ if r["judge_seconds"]]
        print(f"  {name}: {med['wall']:.1f} s wall (range {min(r['wall'] for r in runs_):.1f}-"
              f"{max(r['wall'] for r in runs_):.1f}), {med['peak_rss_mb']:.0f} MB peak RSS, "
              f"{statistics.median(rates) if rates else 0:,.0f} exchanges/s judged, {med['lines']:.0f} lines")  # fmt: skip


if __name__ == "__main__":
    main()
