"""The ``netns`` backend: SUTs run as local commands, each in fresh network namespaces, as root.

Each SUT gets a rig of its own (``netns.NetnsRig``: a client and a SUT namespace on a veth pair):
the SUT and the intercept beside it run in the SUT namespace, the copier in the client namespace,
each as a subprocess of ours (``ip netns exec``) so this process never changes namespace.
``replay`` replays a capture into every SUT at once; ``replay_live`` (a source the copier opens
itself) and ``replay_stream`` (a pcap stream this process writes) replay live traffic into a
single SUT. Leaving the ``with`` block stops everything and removes the namespaces, also on error
and Ctrl-C.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import BinaryIO

from ...channel.protocol import DEFAULT_PORT
from ...errors import EnvironmentProblem, SutError, UsageError
from ...replay.contract import CopierCommand, CopierSettings, Progress, ResultDecoder, intercept_argv, is_ready_line
from ..base import LOG_TAIL, ProgressCallback, SessionCallback, SutReplay, SutSpec, died_note, replay_timeout
from ..readiness import wait_until_ready
from . import NetnsRig, SutProcess
from .steering import auto_steer

_INTERCEPT_READY_TIMEOUT = 15.0


class NetnsSut:
    """A SUT command running in its rig's SUT namespace, with its intercept beside it."""

    def __init__(self, spec: SutSpec, rig: NetnsRig, process: SutProcess) -> None:
        self.spec = spec
        self.rig = rig
        self.process = process
        self.intercept: subprocess.Popen | None = None
        self._intercept_log = tempfile.TemporaryFile(mode="w+")

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def target(self) -> str:
        return f"{self.rig.sut_addr}:{self.spec.port}"

    @property
    def intercept_at(self) -> str:
        return f"{self.rig.sut_addr}:{DEFAULT_PORT}"

    @property
    def alive(self) -> bool:
        return self.process.alive

    def logs(self) -> str:
        return self.process.logs()

    def intercept_logs(self) -> str:
        self._intercept_log.seek(0)
        return self._intercept_log.read()

    def _start_intercept(self) -> None:
        spec = self.spec
        argv = [sys.executable, "-m", "pytest_tcpcopy", "intercept",
                *intercept_argv(spec.port, self.intercept_at, capture_responses=spec.capture_responses)]  # fmt: skip
        proc = self.rig.run_in("sut", argv, stdout=subprocess.PIPE, stderr=self._intercept_log, text=True)
        assert proc.stdout is not None

        def ready() -> str | None:
            readable, _, _ = select.select([proc.stdout], [], [], 0)
            if not readable:
                return "no ready line yet"
            line = proc.stdout.readline()
            if not line:
                raise self._intercept_failed(proc, "exited")
            return None if is_ready_line(line) else f"not the ready line: {line.strip()[:200]}"

        def timed_out(reason: str) -> EnvironmentProblem:
            return self._intercept_failed(proc, f"not ready ({reason})")

        try:
            wait_until_ready(ready, timeout=_INTERCEPT_READY_TIMEOUT, interval=0.02, timed_out=timed_out)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        self.intercept = proc

    def _intercept_failed(self, proc: subprocess.Popen, how: str) -> EnvironmentProblem:
        proc.poll()
        return EnvironmentProblem(f"the intercept did not start in the SUT's namespace ({how}): "
                                  f"{self.intercept_logs().strip()[-2000:]}")  # fmt: skip

    def close(self) -> None:
        self._intercept_log.close()


class NetnsBackend:
    """One run of SUT commands, each in a rig of its own; use as ``with NetnsBackend() as run:``.

    ``steer_receive``: pin each copier to one CPU and steer the SUT side's receive processing to
    the others (``netns.steering``; nothing changes on a single CPU); False leaves both to the
    kernel; None (default) steers with three CPUs or more. ``receive_thread``: that processing
    runs in a kernel thread of its own (threaded NAPI) instead of inside the copier's sends.
    ``prefix`` starts the names of the namespaces made.
    """

    def __init__(self, *, prefix: str = "tcpcopy", steer_receive: bool | None = None,
                 receive_thread: bool = True) -> None:  # fmt: skip
        self.prefix = prefix
        self.steer_receive = auto_steer(os.sched_getaffinity(0)) if steer_receive is None else steer_receive
        self.receive_thread = receive_thread
        self.suts: list[NetnsSut] = []

    def __enter__(self) -> NetnsBackend:  # noqa: PYI034 - typing.Self needs Python 3.11
        return self

    def __exit__(self, *exc: object) -> None:
        self.close(exc)

    def close(self, exc: tuple = (None, None, None)) -> None:
        """Stop every SUT and remove its namespaces, the last started first."""
        failure: BaseException | None = None
        for sut in reversed(self.suts):
            try:
                sut.rig.__exit__(*exc)
            except BaseException as problem:  # noqa: BLE001 - every rig goes; the first problem is raised
                failure = failure or problem
            finally:
                sut.close()
        self.suts.clear()
        if failure is not None:
            raise failure

    def start_sut(self, spec: SutSpec) -> NetnsSut:
        """Start ``spec.command`` in fresh namespaces and return once it accepts connections from
        the client namespace (and its intercept is up). SutError with its output when it exits
        first or is not ready within ``spec.ready_timeout`` seconds."""
        if not spec.command:
            raise UsageError(f"SUT {spec.name!r}: the netns backend runs a command; give SutSpec(command=...)")
        if any(s.name == spec.name for s in self.suts):
            raise UsageError(f"a SUT named {spec.name!r} already runs in this run; give each SUT its own name")
        rig = NetnsRig(self.prefix, steer_receive=self.steer_receive, receive_thread=self.receive_thread)
        rig.__enter__()
        try:
            argv = [*(["env", *spec.environment] if spec.environment else []), *spec.command]
            process = rig.start_sut(argv, spec.port, ready_timeout=spec.ready_timeout, http_path=spec.http_path)
            sut = NetnsSut(spec, rig, process)
            self.suts.append(sut)
        except BaseException:
            rig.__exit__(*sys.exc_info())
            raise
        sut._start_intercept()
        return sut

    # --- replays -------------------------------------------------------------------------------

    def replay(
        self,
        capture: str | os.PathLike,
        settings: CopierSettings,
        *,
        progress: ProgressCallback | None = None,
        on_session: SessionCallback | None = None,
        timeout: float | None = None,
        keep_sessions: bool = True,
    ) -> list[SutReplay]:
        """Replay ``capture`` into every SUT started so far, concurrently; one result per SUT in
        start order. ``progress`` and ``on_session`` get the copiers' reports as they come, from
        other threads; without ``keep_sessions`` the results hold none of the sessions (their
        totals are the copiers'). A SUT that died during the replay is noted in its result, with
        its logs."""
        if not self.suts:
            raise UsageError("replay() needs at least one SUT from start_sut()")
        copiers = [_Copier(sut, CopierCommand(sut.target, (sut.intercept_at,), _for(sut, settings),
                                              capture=os.fspath(capture), progress=progress is not None),
                           progress, on_session, keep_sessions=keep_sessions) for sut in self.suts]  # fmt: skip
        return _finish_all(copiers, replay_timeout(settings, timeout))

    def replay_live(self, settings: CopierSettings, *, mirror_listen: str | None = None, live: str | None = None,
                    duration: float | None = None, progress: ProgressCallback | None = None,
                    on_session: SessionCallback | None = None, timeout: float | None = None) -> SutReplay:  # fmt: skip
        """Replay live traffic into the (one) SUT as it arrives, like ``replay``: the copier takes it
        from mirror agents connecting to ``mirror_listen`` or captures it on interface ``live``,
        for ``duration`` seconds.

        The copier runs in the SUT's rig's client namespace: a mirror listener there is reachable at
        the rig's ``client_addr`` from its SUT namespace only, so agents must be routed into it.
        """
        sut = self._only_sut("replay_live")
        command = CopierCommand(sut.target, (sut.intercept_at,), _for(sut, settings), live=live, duration=duration,
                                mirror_listen=mirror_listen, progress=progress is not None)  # fmt: skip
        return _Copier(sut, command, progress, on_session).finish(replay_timeout(settings, timeout))

    def replay_stream(self, feed: Callable[[BinaryIO], None], settings: CopierSettings, *,
                      progress: ProgressCallback | None = None, on_session: SessionCallback | None = None,
                      timeout: float | None = None) -> SutReplay:  # fmt: skip
        """Replay live traffic that this process streams to the copier, as it arrives; like ``replay``.

        ``feed(stream)`` runs in another thread and writes a classic pcap stream (``live.PcapWriter``)
        to the copier's stdin as the packets come; the stream is closed when ``feed`` returns, which
        ends the copier's live window (the sessions still open are played to their end). An
        exception of ``feed`` is raised here once the copier is done.
        """
        sut = self._only_sut("replay_stream")
        command = CopierCommand(sut.target, (sut.intercept_at,), _for(sut, settings), stdin_stream=True,
                                progress=progress is not None)  # fmt: skip
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
            copier = _Copier(sut, command, progress, on_session, stdin=read_end)
        except BaseException:
            os.close(write_end)
            raise
        finally:
            os.close(read_end)
        feeder.start()
        try:
            replayed = copier.finish(replay_timeout(settings, timeout))
        finally:
            feeder.join()  # the copier is gone: a feed blocked on its stdin fails (EPIPE) and returns
        if failed:
            raise failed[0]
        return replayed

    def _only_sut(self, method: str) -> NetnsSut:
        if len(self.suts) != 1:
            raise UsageError(f"NetnsBackend.{method}() replays into exactly one SUT; {len(self.suts)} are started")
        return self.suts[0]


def _for(sut: NetnsSut, settings: CopierSettings) -> CopierSettings:
    return replace(settings, capture_responses=settings.capture_responses or sut.spec.capture_responses)


class _Copier:
    """One copier process in ``sut``'s client namespace, its stdout decoded as the result stream
    and its stderr's progress lines handed on, each by a thread of its own, as they come.

    The copier writes its result stream into an unlinked file, which a thread follows: a slow
    ``on_session`` (a judge) then never blocks the copier's writes, which would stall its replay.
    """

    _POLL = 0.02  # seconds between looks at a result file that has nothing new yet

    def __init__(self, sut: NetnsSut, command: CopierCommand, progress: ProgressCallback | None,
                 on_session: SessionCallback | None, stdin: int | None = None, *,
                 keep_sessions: bool = True) -> None:  # fmt: skip
        self.sut = sut
        argv = [sys.executable, "-m", "pytest_tcpcopy", "replay", *command.to_argv()]
        fd, path = tempfile.mkstemp(prefix="tcpcopy-results-")
        os.close(fd)
        try:
            self.results = open(path, "rb")  # noqa: SIM115 - closed by finish()
            with open(path, "ab") as out:  # appending: the reader's position never moves the writes
                self.proc = sut.rig.run_in("client", argv, cpus=sut.rig.copier_cpus, stdin=stdin, stdout=out,
                                           stderr=subprocess.PIPE, text=True)  # fmt: skip
        finally:
            os.unlink(path)
        self.decoder = ResultDecoder(f"the copier for SUT {sut.name!r}",
                                     None if on_session is None else lambda r: on_session(sut.name, r),
                                     keep_sessions=keep_sessions)  # fmt: skip
        self.progress = progress
        self.errors: list[str] = []  # stderr lines that are not progress reports
        self.failed: list[Exception] = []  # raised by a callback or the decoder; re-raised by finish()
        self.readers = [threading.Thread(target=self._read_results, daemon=True),
                        threading.Thread(target=self._read_stderr, daemon=True)]  # fmt: skip
        for reader in self.readers:
            reader.start()

    def _read_results(self) -> None:
        pending = b""
        while True:
            exited = self.proc.poll() is not None  # before the read: what it wrote last is read too
            chunk = self.results.read(1 << 16)
            if not chunk:
                if exited:
                    break
                time.sleep(self._POLL)
                continue
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                self._feed(line)
        if pending:
            self._feed(pending)

    def _feed(self, line: bytes) -> None:
        if not self.failed:
            try:
                self.decoder.feed(line.decode(errors="replace"))
            except Exception as exc:  # re-raised in the caller's thread
                self.failed.append(exc)

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            report = None if self.progress is None else Progress.from_line(line)
            if report is None:
                self.errors.append(line)
            elif not self.failed:
                try:
                    self.progress(self.sut.name, report)
                except Exception as exc:  # re-raised in the caller's thread
                    self.failed.append(exc)

    def finish(self, timeout: float) -> SutReplay:
        """Wait for the copier; its result, with a note if the SUT died meanwhile."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise SutError(f"the copier for SUT {self.sut.name!r} did not finish within {timeout:g} s") from None
        finally:
            for reader in self.readers:
                reader.join()
            self.results.close()
        process = self.sut.process
        died = None if process.alive else died_note(self.sut.name, process.exit_description())
        if self.proc.returncode != 0:
            if died:
                raise SutError(f"{died}; the copier then failed (exit {self.proc.returncode})",
                               logs=self.sut.logs()[-LOG_TAIL:])  # fmt: skip
            raise EnvironmentProblem(f"copier failed (exit {self.proc.returncode}): "
                                     f"{''.join(self.errors).strip()[-2000:]}")  # fmt: skip
        if self.failed:
            raise self.failed[0]
        replayed = SutReplay(self.sut.name, self.decoder.finish())
        if died:  # first: the notes after it (resets, unanswered requests) are its consequences
            replayed.result.notes.insert(0, died)
            replayed.sut_exit = ("exited", process.returncode)
            replayed.sut_logs = self.sut.logs()[-LOG_TAIL:]
        return replayed


def _finish_all(copiers: Sequence[_Copier], timeout: float) -> list[SutReplay]:
    """Every copier's result, in order; the first failure is raised once all have ended."""
    results: list[SutReplay] = []
    failure: BaseException | None = None
    for copier in copiers:
        try:
            results.append(copier.finish(timeout))
        except Exception as exc:  # noqa: BLE001 - the others are still waited for
            failure = failure or exc
    if failure is not None:
        raise failure
    return results
