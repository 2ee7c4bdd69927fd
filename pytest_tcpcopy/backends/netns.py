"""The ``netns`` backend: a SUT run as a local command in a fresh network namespace, as root.

``NetnsBackend`` brings up the rig (client and SUT namespaces on a veth pair), starts the SUT and
the intercept beside it, and replays captures (or live traffic: ``replay_live`` from a source the
copier opens itself, ``replay_stream`` from a pcap stream this process writes) with the copier
in the client namespace, each run as a subprocess of ours (``ip netns exec``) so this process
never changes namespace. Leaving the ``with`` block stops everything and removes the namespaces,
also on error and Ctrl-C.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from typing import BinaryIO

from ..channel.protocol import DEFAULT_PORT
from ..commands.replay import parse_progress_line
from ..errors import EnvironmentProblem, SutError
from ..netns import NetnsRig, SutProcess
from ..netns.steering import auto_steer

_READY_TIMEOUT = 15.0


class NetnsBackend:
    def __init__(
        self,
        sut_argv: Sequence[str],
        port: int,
        *,
        capture_responses: bool = True,
        ready_timeout: float = 10.0,
        http_path: str | None = None,
        prefix: str = "tcpcopy",
        steer_receive: bool | None = None,
        receive_thread: bool = True,
    ) -> None:
        """``steer_receive``: pin the copier to one CPU and steer the SUT side's receive
        processing to the others (``netns.steering``; nothing changes on a single CPU); False
        leaves both to the kernel; None (default) steers with three CPUs or more.
        ``receive_thread``: that processing runs in a kernel thread of its own (threaded NAPI)
        instead of inside the copier's sends (``netns.steering``)."""
        self.sut_argv = list(sut_argv)
        self.port = port
        self.capture_responses = capture_responses
        self.ready_timeout = ready_timeout
        self.http_path = http_path
        if steer_receive is None:
            steer_receive = auto_steer(os.sched_getaffinity(0))
        self.rig = NetnsRig(prefix, steer_receive=steer_receive, receive_thread=receive_thread)
        self.sut: SutProcess | None = None
        self._intercept_log = tempfile.TemporaryFile(mode="w+")

    @property
    def target(self) -> str:
        return f"{self.rig.sut_addr}:{self.port}"

    @property
    def intercept_at(self) -> str:
        return f"{self.rig.sut_addr}:{DEFAULT_PORT}"

    def __enter__(self) -> "NetnsBackend":
        self.rig.__enter__()
        try:
            self.sut = self.rig.start_sut(
                self.sut_argv, self.port, ready_timeout=self.ready_timeout, http_path=self.http_path
            )
            self._start_intercept()
        except BaseException:
            self.rig.__exit__(*sys.exc_info())
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.rig.__exit__(*exc)
        self._intercept_log.close()

    def _start_intercept(self) -> None:
        argv = [sys.executable, "-m", "pytest_tcpcopy", "intercept", "--port", str(self.port),
                "--listen", self.intercept_at]  # fmt: skip
        if self.capture_responses:
            argv.append("--capture-responses")
        proc = self.rig.run_in("sut", argv, stdout=subprocess.PIPE, stderr=self._intercept_log, text=True)
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], _READY_TIMEOUT)
        line = proc.stdout.readline() if ready else ""
        if line.startswith("{") and json.loads(line).get("event") == "ready":
            self.intercept = proc
            return
        proc.kill()
        proc.wait()
        raise EnvironmentProblem(f"the intercept did not start in the SUT's namespace: {self.intercept_logs() or line}")

    def intercept_logs(self) -> str:
        self._intercept_log.seek(0)
        return self._intercept_log.read()

    def replay(self, capture: str | os.PathLike, *copier_args: str, timeout: float = 3700.0,
               progress: Callable[[dict], None] | None = None) -> dict:  # fmt: skip
        """Replay ``capture`` into the SUT; return the copier's JSON result document.

        ``copier_args`` are extra ``pytest-tcpcopy replay`` options (``--speed``, ``--amplify`` ...).
        With ``progress``, the copier reports progress and ``progress`` gets each report (a dict,
        see ``commands.replay.progress_printer``) about every second, from another thread.
        A SUT that died during the replay is noted in the result, with its logs.
        """
        return self._copy([os.fspath(capture)], copier_args, timeout, progress)

    def replay_live(self, source_args: Sequence[str], *copier_args: str, timeout: float = 3700.0) -> dict:
        """Replay live traffic into the SUT as it arrives, like ``replay``; ``source_args`` name the
        source: ``["--mirror-listen", "ADDR:PORT", "--duration", "S"]`` or ``["--live", IFACE, ...]``.

        The copier runs in the rig's client namespace: a mirror listener there is reachable at the
        rig's ``client_addr`` from its SUT namespace only, so agents must be routed into it.
        """
        return self._copy(list(source_args), copier_args, timeout)

    def replay_stream(self, feed: Callable[[BinaryIO], None], *copier_args: str, timeout: float = 3700.0,
                      progress: Callable[[dict], None] | None = None) -> dict:  # fmt: skip
        """Replay live traffic that this process streams to the copier, as it arrives; like ``replay``.

        ``feed(stream)`` runs in another thread and writes a classic pcap stream (``live.PcapWriter``)
        to the copier's stdin as the packets come; the stream is closed when ``feed`` returns, which
        ends the copier's live window (the sessions still open are played to their end). An
        exception of ``feed`` is raised here once the copier is done.
        """
        read_end, write_end = os.pipe()  # both non-inheritable: only the copier's stdin holds the read end
        failed: list[BaseException] = []

        def run_feed() -> None:
            try:
                with open(write_end, "wb") as stream:
                    feed(stream)
            except BrokenPipeError:
                failed.append(EnvironmentProblem("the copier stopped reading the live stream"))
            except Exception as exc:  # re-raised in the caller's thread
                failed.append(exc)

        feeder = threading.Thread(target=run_feed, name="tcpcopy-feed", daemon=True)
        try:
            copier = self._start_copier(["--stdin-stream"], copier_args, progress, stdin=read_end)
        except BaseException:
            os.close(write_end)
            raise
        finally:
            os.close(read_end)
        feeder.start()
        try:
            data = self._finish_copier(copier, timeout, progress)
        finally:
            feeder.join()  # the copier is gone: a feed blocked on its stdin fails (EPIPE) and returns
        if failed:
            raise failed[0]
        return data

    def _copy(self, source_args: list[str], copier_args: Sequence[str], timeout: float,
              progress: Callable[[dict], None] | None = None) -> dict:  # fmt: skip
        copier = self._start_copier(source_args, copier_args, progress)
        return self._finish_copier(copier, timeout, progress)

    def _start_copier(self, source_args: list[str], copier_args: Sequence[str],
                      progress: Callable[[dict], None] | None, stdin: int | None = None) -> subprocess.Popen:  # fmt: skip
        argv = [sys.executable, "-m", "pytest_tcpcopy", "replay", *source_args, "--json",
                "--target", self.target, "--intercept", self.intercept_at, *copier_args]  # fmt: skip
        if self.capture_responses and "--capture-responses" not in copier_args:
            argv.append("--capture-responses")
        if progress is not None and "--progress" not in copier_args:
            argv.append("--progress")
        return self.rig.run_in("client", argv, cpus=self.rig.copier_cpus, stdin=stdin, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)  # fmt: skip

    def _finish_copier(self, copier: subprocess.Popen, timeout: float,
                       progress: Callable[[dict], None] | None) -> dict:  # fmt: skip
        """Wait for the copier; its JSON document, with a note if the SUT died meanwhile."""
        try:
            out, err = _communicate_with_progress(copier, timeout, progress)
        except subprocess.TimeoutExpired:
            copier.kill()
            copier.wait()
            raise SutError(f"the copier did not finish within {timeout:g} s") from None
        assert self.sut is not None
        died = None if self.sut.alive else f"the SUT {self.sut.exit_description()} during the replay"
        if copier.returncode != 0:
            if died:
                raise SutError(f"{died}; the copier then failed (exit {copier.returncode})", logs=self.sut.logs()[-8000:])
            raise EnvironmentProblem(f"copier failed (exit {copier.returncode}): {(err or out).strip()[-2000:]}")
        data = json.loads(out)
        if died:  # first: the notes after it (resets, unanswered requests) are its consequences
            data["notes"].insert(0, died)
            data["sut_exit"] = {"status": "exited", "code": self.sut.returncode}
            data["sut_logs"] = self.sut.logs()[-8000:]
        return data


def _communicate_with_progress(
    copier: subprocess.Popen, timeout: float, progress: Callable[[dict], None] | None
) -> tuple[str, str]:
    """``copier.communicate(timeout)`` without touching its stdin (a live feed may own it),
    handing each progress line of its stderr to ``progress`` (if any) as it comes; the other
    stderr lines are returned as usual. An exception raised by ``progress`` stops the reports
    (the output is still drained) and is raised at the end."""
    out: list[str] = []
    err: list[str] = []
    failed: list[Exception] = []

    def read_stdout() -> None:
        assert copier.stdout is not None
        out.append(copier.stdout.read())

    def read_stderr() -> None:
        assert copier.stderr is not None
        for line in copier.stderr:
            doc = None if failed or progress is None else parse_progress_line(line)
            if doc is None:
                err.append(line)
                continue
            try:
                progress(doc)
            except Exception as exc:  # re-raised in the caller's thread
                failed.append(exc)

    readers = [threading.Thread(target=read_stdout, daemon=True), threading.Thread(target=read_stderr, daemon=True)]
    for reader in readers:
        reader.start()
    copier.wait(timeout=timeout)
    for reader in readers:
        reader.join()
    if failed:
        raise failed[0]
    return "".join(out), "".join(err)
