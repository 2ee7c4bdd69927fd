"""The ``docker`` backend: SUTs from user images, replayed into side by side, with Docker alone.

One run = one ``internal`` Docker network (no route off the machine) holding:

- per SUT: the SUT container (never a published port); the intercept as a sidecar sharing the
  SUT's network namespace with CAP_NET_ADMIN only; and, per replay, a copier container with
  CAP_NET_RAW only that also joins the SUT's namespace;
- one probe container that checks readiness from inside the network, the way a client reaches
  the SUT (a host-side port check lies).

Why the copier joins the SUT's namespace instead of sending across the network: replayed clients
have 198.18.0.0/15 source addresses, and Docker's isolation rules for internal networks
(``! -s SUBNET -o br-X -j DROP``, applied to bridged frames when br_netfilter is on) drop any
frame whose source is outside the network's subnet. Putting the replay range into the subnet
would forbid two concurrent runs (Docker refuses overlapping pools). Inside the SUT's namespace the
copier's segments are delivered locally, the SUT's answers route out through eth0 and are queued
by the intercept's rules in OUTPUT before they reach the link, as in tcpcopy's same-host mode.

Everything is labelled with the run (see ``pytest_tcpcopy.backends.docker.runs``) and removed on leaving
the ``with`` block, also when setup fails and on Ctrl-C or SIGTERM; ``keep=True`` keeps it and
logs how to reach it. The pytest process needs Docker access only: no root, routes or iptables.
"""

from __future__ import annotations

import os
import sys
import tarfile
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import docker.errors
from docker.types import LogConfig
from requests.exceptions import ConnectionError as RequestsConnectionError
from requests.exceptions import ReadTimeout

from ...channel.protocol import DEFAULT_PORT
from ...errors import EnvironmentProblem, SutError, UsageError
from ...replay.contract import CopierCommand, CopierSettings, Progress, ResultDecoder, intercept_argv, is_ready_line
from ...replay.results import ReplayResult, SessionResult
from ..base import LOG_TAIL, ProgressCallback, SessionCallback, SutReplay, SutSpec, died_note, replay_timeout
from ..readiness import wait_until_ready
from ..signals import held_signals, interrupt_on_sigterm, raise_held
from .images import ensure_agent_image
from .prepare import missing_image_message
from .privileges import agent_privileges, sut_privileges
from .reaper import start_reaper
from .runs import RunLabels, docker_client, reap, sweep_run

Log = Callable[[str], None]
_PROBE_INTERVAL = 0.1
_INTERCEPT_READY_TIMEOUT = 20.0
_CAPTURE_DIR = "/tmp"
_JSON_LOGS = LogConfig(type=LogConfig.types.JSON)  # logs() must work whatever the daemon's default driver


def _stderr_log(line: str) -> None:
    print(f"pytest-tcpcopy: {line}", file=sys.stderr, flush=True)


@dataclass(eq=False)
class DockerSut:
    """A running SUT container and its intercept sidecar, reachable at ``address:port`` on the run's network."""

    name: str
    image: str
    port: int
    address: str
    container: Any  # docker.models.containers.Container
    capture_responses: bool
    intercept: Any = None
    _kept_logs: str | None = field(default=None, repr=False)

    @property
    def target(self) -> str:
        return f"{self.address}:{self.port}"

    @property
    def intercept_at(self) -> str:
        return f"{self.address}:{DEFAULT_PORT}"

    def status(self) -> tuple[str, int | None]:
        """The container's state ("running", "exited" ...) and its exit code once it stopped."""
        try:
            self.container.reload()
        except docker.errors.NotFound:
            return "removed", None
        state = self.container.attrs["State"]
        return state["Status"], None if state["Status"] == "running" else state.get("ExitCode")

    @property
    def alive(self) -> bool:
        return self.status()[0] == "running"

    def logs(self) -> str:
        """The SUT's stdout and stderr so far (kept after the run is torn down)."""
        if self._kept_logs is not None:
            return self._kept_logs
        try:
            return self.container.logs(stdout=True, stderr=True).decode(errors="replace")
        except docker.errors.NotFound:
            return ""

    def _keep_logs(self) -> None:
        self._kept_logs = self.logs()


class DockerBackend:
    """One run's Docker objects; use as ``with DockerBackend() as run:``.

    ``client``: a ``docker.DockerClient`` (default: from the environment); ``run_id``: the label
    value and name part of everything made (default: random); ``keep``: leave everything running
    at exit and log how to reach it; ``agent_image``: an agent image to use instead of the one
    built for the installed package; ``log``: where progress lines go.
    """

    def __init__(
        self,
        *,
        client=None,
        run_id: str | None = None,
        keep: bool = False,
        agent_image: str | None = None,
        log: Log = _stderr_log,
    ) -> None:
        self.run = RunLabels.fresh(run_id, keep=keep)
        self.keep = keep
        self.log = log
        self._client = client
        self.agent_image = agent_image
        self.network = None
        self.suts: list[DockerSut] = []
        self._containers: list[Any] = []  # every container made, in start order
        self._probe = None
        self._copiers_made = 0
        self._restore_sigterm: Callable[[], None] | None = None
        self._reaper: Any = None  # removes the run's objects if this process dies (docker.reaper)

    @property
    def run_id(self) -> str:
        return self.run.run_id

    @property
    def network_name(self) -> str:
        return f"tcpcopy-{self.run_id}"

    @property
    def client(self):
        if self._client is None:
            self._client = docker_client()
        return self._client

    def __enter__(self) -> DockerBackend:  # noqa: PYI034 - typing.Self needs Python 3.11
        self._restore_sigterm = interrupt_on_sigterm("a Docker run")
        try:
            for leftover in reap(self.client):
                self.log(f"reaped {leftover} of a run whose process is gone")
            if self.agent_image is None:
                self.agent_image = ensure_agent_image(self.client, log=self.log)
            if not self.keep:
                self._reaper = start_reaper(self.client, self.run, self.agent_image, self.log)
            self.network = self.client.networks.create(
                self.network_name, driver="bridge", internal=True, labels=self.run.labels("network")
            )
        except BaseException:
            self.close(raise_problems=False)
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(raise_problems=exc_type is None)

    # --- SUTs -----------------------------------------------------------------------------------

    def start_sut(self, spec: SutSpec) -> DockerSut:
        """Start ``spec.image`` on the run's network, wait until it accepts connections on its
        port (and, with ``http_path``, answers a GET of it below 400) from inside the network, then
        start its intercept. Raises SutError with the container's logs when it exits first or is
        not ready within ``ready_timeout`` seconds; UsageError when the image is not present
        locally (it is never pulled here: ``docker.prepare``). The SUT runs without NET_RAW and with
        no-new-privileges; ``cap_add`` gives capabilities back, ``new_privileges`` lifts the
        latter (``docker.privileges``)."""
        if self.network is None:
            raise UsageError(
                "DockerBackend.start_sut() needs the run up: call it inside `with DockerBackend() as run:`"
            )
        if spec.image is None:
            raise UsageError(f"SUT {spec.name!r}: the docker backend runs an image; give SutSpec(image=...)")
        port, name = spec.port, spec.name
        if not 0 < port < 65536 or port == DEFAULT_PORT:
            raise UsageError(f"SUT port {port}: expected 1..65535 other than the intercept's {DEFAULT_PORT}")
        if any(s.name == name for s in self.suts):
            raise UsageError(f"a SUT named {name!r} already runs in this run; give each SUT its own name")
        try:  # create, never run: run() pulls an image that is not present locally
            container = self.client.containers.create(
                spec.image,
                list(spec.command) or None,
                environment=list(spec.environment) or None,
                name=self._name(name),
                hostname=name,
                network=self.network.name,
                labels=self.run.labels("sut"),
                log_config=_JSON_LOGS,
                **sut_privileges(spec.cap_add, new_privileges=spec.new_privileges),
            )
        except docker.errors.ImageNotFound:
            raise UsageError(f"SUT {name}: {missing_image_message(spec.image)}") from None
        except docker.errors.APIError as exc:
            if exc.status_code != 400:
                raise
            raise UsageError(f"SUT {name}: image {spec.image!r}: {exc.explanation or exc}") from None
        self._containers.append(container)
        container.start()
        container.reload()
        address = container.attrs["NetworkSettings"]["Networks"][self.network.name]["IPAddress"]
        sut = DockerSut(name, spec.image, port, address, container, spec.capture_responses)
        self.suts.append(sut)
        self._wait_ready(sut, spec.ready_timeout, spec.http_path)
        sut.intercept = self._start_intercept(sut)
        return sut

    def _wait_ready(self, sut: DockerSut, timeout: float, http_path: str | None) -> None:
        probe = self._probe_container()
        argv = ["python3", "-I", "-m", "pytest_tcpcopy.backends.netns.probe", sut.address, str(sut.port)]
        argv += [http_path] if http_path else []

        def ready() -> str | None:
            status, code = sut.status()
            if status != "running":
                raise SutError(
                    f"SUT {sut.name!r} ({sut.image}) {status} with code {code} before accepting connections "
                    f"on {sut.target}",
                    logs=sut.logs()[-LOG_TAIL:],
                )
            exit_code, (out, err) = probe.exec_run(argv, demux=True)
            if exit_code == 0:
                return None
            return (out or err or b"the probe said nothing").decode(errors="replace").strip()

        def timed_out(reason: str) -> SutError:
            return SutError(
                f"SUT {sut.name!r} ({sut.image}) not ready on {sut.target} within {timeout:g} s "
                f"(probed from inside the run's network): {reason}",
                logs=sut.logs()[-LOG_TAIL:],
            )

        wait_until_ready(ready, timeout=timeout, timed_out=timed_out, interval=_PROBE_INTERVAL)

    def _probe_container(self):
        if self._probe is None:
            self._probe = self._run_agent(
                ["sleep", "infinity"], name=self._name("probe"), role="probe", network=self.network.name
            )
        return self._probe

    def _start_intercept(self, sut: DockerSut):
        listen = f"0.0.0.0:{DEFAULT_PORT}"
        argv = ["python3", "-m", "pytest_tcpcopy", "intercept",
                *intercept_argv(sut.port, listen, capture_responses=sut.capture_responses)]  # fmt: skip
        intercept = self._run_agent(
            argv,
            name=self._name(f"{sut.name}-intercept"),
            role="intercept",
            network_mode=f"container:{sut.container.id}",
            capability="NET_ADMIN",
        )

        def logs() -> str:
            return intercept.logs(stdout=True, stderr=True).decode(errors="replace").strip()[-2000:]

        def ready() -> str | None:
            lines = intercept.logs(stdout=True, stderr=False).decode(errors="replace").splitlines()
            if any(is_ready_line(line) for line in lines):
                return None
            intercept.reload()
            if intercept.status != "running":
                raise EnvironmentProblem(f"the intercept beside SUT {sut.name!r} exited: {logs()}")
            return "no ready line yet"

        def timed_out(reason: str) -> EnvironmentProblem:
            return EnvironmentProblem(f"the intercept beside SUT {sut.name!r} not ready within "
                                      f"{_INTERCEPT_READY_TIMEOUT:g} s: {logs()}")  # fmt: skip

        wait_until_ready(ready, timeout=_INTERCEPT_READY_TIMEOUT, timed_out=timed_out)
        return intercept

    def _run_agent(self, argv: Sequence[str], *, name: str, role: str, start: bool = True,
                   capability: str | None = None, **kwargs: Any):  # fmt: skip
        """Create (and start) an agent container as uid 65534 with every capability dropped but
        ``capability`` (``docker.privileges``)."""
        try:
            container = self.client.containers.create(
                self.agent_image,
                name=name,
                labels=self.run.labels(role),
                log_config=_JSON_LOGS,
                **agent_privileges(argv, capability),
                **kwargs,
            )
        except docker.errors.ImageNotFound:
            raise EnvironmentProblem(f"agent image {self.agent_image!r} is not present locally") from None
        self._containers.append(container)
        if start:
            container.start()
        return container

    def _name(self, part: str) -> str:
        return f"tcpcopy-{self.run_id}-{part}"

    # --- replay ---------------------------------------------------------------------------------

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
        """Replay ``capture`` into every SUT started so far, concurrently, one copier container each.

        ``progress(sut_name, report)`` gets each copier's progress reports and ``on_session(sut_name,
        result)`` each finished session copy, as they come, from other threads; without
        ``keep_sessions`` (and with ``on_session``) the results hold none of the sessions (their
        totals are the copiers'). Returns one result per SUT, in start order; a SUT that died
        during the replay is noted in its result's notes, its logs kept with it.
        """
        if not self.suts:
            raise UsageError("replay() needs at least one SUT from start_sut()")
        path = Path(capture)
        if not path.is_file():
            raise UsageError(f"capture {path} is not a file")
        suts = list(self.suts)
        copiers = []
        try:
            with tempfile.TemporaryFile() as archive:
                with tarfile.open(fileobj=archive, mode="w") as tar:
                    tar.add(path, arcname=path.name, filter=_readable_by_agents)
                for sut in suts:
                    capture_responses = settings.capture_responses or sut.capture_responses
                    command = CopierCommand(
                        target=sut.target, intercepts=(sut.intercept_at,), capture=f"{_CAPTURE_DIR}/{path.name}",
                        settings=replace(settings, capture_responses=capture_responses), progress=progress is not None,
                    )  # fmt: skip
                    copiers.append(self._copier(sut, command, archive))
            for copier in copiers:  # all uploaded first, so that the replays start together
                copier.start()
            followers = []
            decoders = []
            for sut, copier in zip(suts, copiers):
                decoder = ResultDecoder(f"the copier for SUT {sut.name!r}", _tagged(on_session, sut.name),
                                        keep_sessions=keep_sessions or on_session is None)  # fmt: skip
                decoders.append(decoder)
                if progress is not None:
                    followers.append(_LogFollower(copier, stdout=False, line=_progress_of(progress, sut.name)))
                if on_session is not None:
                    followers.append(_LogFollower(copier, stdout=True, line=decoder.feed))
            deadline = time.monotonic() + replay_timeout(settings, timeout)
            codes = [self._copier_exit(sut, copier, deadline) for sut, copier in zip(suts, copiers)]
            for follower in followers:
                follower.finish()
            return [self._copier_result(sut, copier, code, decoder, streamed=on_session is not None)
                    for sut, copier, code, decoder in zip(suts, copiers, codes, decoders)]  # fmt: skip
        finally:
            if not self.keep:
                for copier in copiers:
                    self._remove(copier, [])

    def _copier(self, sut: DockerSut, command: CopierCommand, archive):
        """A copier container for ``sut``, created with the capture in it, not started."""
        self._copiers_made += 1
        copier = self._run_agent(
            ["python3", "-m", "pytest_tcpcopy", "replay", *command.to_argv()],
            name=self._name(f"{sut.name}-copier{self._copiers_made}"),
            role="copier",
            start=False,
            network_mode=f"container:{sut.container.id}",
            capability="NET_RAW",
        )
        archive.seek(0)
        copier.put_archive(_CAPTURE_DIR, archive)
        return copier

    @staticmethod
    def _copier_exit(sut: DockerSut, copier, deadline: float) -> int:
        try:
            return copier.wait(timeout=max(1.0, deadline - time.monotonic()))["StatusCode"]
        except (ReadTimeout, RequestsConnectionError) as exc:  # the SDK's HTTP read timed out
            copier.kill()
            raise SutError(f"the copier for SUT {sut.name!r} did not finish in time ({exc})") from None

    @staticmethod
    def _copier_result(sut: DockerSut, copier, code: int, decoder: ResultDecoder, *, streamed: bool) -> SutReplay:
        out = "" if streamed else copier.logs(stdout=True, stderr=False).decode(errors="replace")
        status, exit_code = sut.status()
        died = None if status == "running" else died_note(sut.name, f"({sut.image}) {status} with code {exit_code}")
        if code != 0:
            err = copier.logs(stdout=False, stderr=True).decode(errors="replace").strip()
            if died:
                raise SutError(f"{died}; the copier then failed (exit {code})", logs=sut.logs()[-LOG_TAIL:])
            raise EnvironmentProblem(f"copier for SUT {sut.name!r} failed (exit {code}): {(err or out)[-2000:]}")
        result: ReplayResult = decoder.finish() if streamed else decoder.feed_all(out.splitlines())
        replayed = SutReplay(sut.name, result)
        if died:  # first: the notes after it (unsent packets, resets) are its consequences
            result.notes.insert(0, died)
            replayed.sut_exit = (status, exit_code)
            replayed.sut_logs = sut.logs()[-LOG_TAIL:]
        return replayed

    # --- teardown -------------------------------------------------------------------------------

    def close(self, *, raise_problems: bool = True) -> None:
        """Remove every container and the network (or, with ``keep``, log how to reach them)."""
        with held_signals() as held:
            for sut in self.suts:
                sut._keep_logs()
            if self.keep:
                self._log_kept()
                problems = []
            else:
                problems = self._teardown(settle=not raise_problems)
        if self._restore_sigterm is not None:
            self._restore_sigterm()
            self._restore_sigterm = None
        if problems:
            message = f"docker run {self.run_id} teardown incomplete: " + "; ".join(problems)
            if raise_problems and not held:
                raise EnvironmentProblem(message)
            warnings.warn(message, RuntimeWarning, stacklevel=2)
        raise_held(held)

    def _teardown(self, *, settle: bool) -> list[str]:
        """Remove the run's containers and network; ``settle``: after a failure, when a creation
        may still be under way, the reaper sweeps until the run has settled."""
        problems: list[str] = []
        for container in reversed(self._containers):
            self._remove(container, problems)
        self._containers.clear()
        self._probe = None
        self.network = None
        if self._client is not None:
            try:  # by label: also what was made while a signal arrived, and the network
                problems += sweep_run(self.client, self.run_id)
            except docker.errors.APIError as exc:
                problems.append(f"sweeping run {self.run_id}: {exc.explanation or exc}")
        if self._reaper is not None:
            self._reaper.release(settle=settle)
            self._reaper = None
        return problems

    @staticmethod
    def _remove(container, problems: list[str]) -> None:
        try:
            container.remove(force=True, v=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            problems.append(f"container {container.name}: {exc.explanation or exc}")

    def _log_kept(self) -> None:
        names = [c.name for c in self._containers]
        self.log(f"keeping run {self.run_id}: network {self.network_name}, containers {', '.join(names) or 'none'}")
        for sut in self.suts:
            self.log(f"  SUT {sut.name} at {sut.target}: docker exec -it {sut.container.name} sh")
        self.log(
            f"  remove with: docker rm -f $(docker ps -aq --filter label=pytest-tcpcopy.run={self.run_id}); "
            f"docker network rm {self.network_name}"
        )


class _LogFollower:
    """Follows one stream of a copier container (stdout or stderr) in a thread, handing each line
    to ``line``. An exception raised by ``line`` stops the calls; ``finish()`` raises it."""

    def __init__(self, copier, *, stdout: bool, line: Callable[[str], object]) -> None:
        self._copier = copier
        self._stdout = stdout
        self._line = line
        self._failed: list[Exception] = []
        self._handled = 0  # lines handled so far
        self._thread = threading.Thread(target=self._follow, daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        pending = b""
        try:
            for chunk in self._copier.logs(stream=True, follow=True, stdout=self._stdout, stderr=not self._stdout):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    self._handle(line.decode(errors="replace"))
            if pending:
                self._handle(pending.decode(errors="replace"))
        except (docker.errors.APIError, RequestsConnectionError, ReadTimeout):
            return  # the copier is gone: its exit status says why

    def _handle(self, text: str) -> None:
        self._handled += 1
        if self._failed:
            return
        try:
            self._line(text)
        except Exception as exc:  # re-raised by finish(), in the caller's thread
            self._failed.append(exc)

    def finish(self) -> None:
        """Wait for the stream to end (the copier has exited) and raise what ``line`` raised:
        for as long as lines are still being handled (a judge behind the copier), then at most
        five seconds more."""
        handled = -1
        while self._thread.is_alive() and self._handled != handled:
            handled = self._handled
            self._thread.join(timeout=5.0)
        if self._failed:
            raise self._failed[0]


def _progress_of(progress: ProgressCallback, name: str) -> Callable[[str], None]:
    def line(text: str) -> None:
        report = Progress.from_line(text)
        if report is not None:
            progress(name, report)

    return line


def _tagged(on_session: SessionCallback | None, name: str) -> Callable[[SessionResult], None] | None:
    return None if on_session is None else lambda result: on_session(name, result)


def pair_results(results: Sequence[ReplayResult]) -> dict[tuple[int, int], list[SessionResult | None]]:
    """The sessions of several results (one per SUT) side by side, by (session, copy).

    Each value has one entry per result, in order; None where a result lacks that session.
    """
    paired: dict[tuple[int, int], list[SessionResult | None]] = {}
    for i, result in enumerate(results):
        for session in result.sessions:
            row = paired.setdefault((session.session, session.copy), [None] * len(results))
            row[i] = session
    return paired


def _readable_by_agents(info: tarfile.TarInfo) -> tarfile.TarInfo:
    """The capture as the copier (uid 65534) may read it, whoever owns it here."""
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode = 0o444
    return info
