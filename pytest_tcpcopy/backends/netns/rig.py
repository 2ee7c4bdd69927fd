"""The bench rig as a context manager: a client and a SUT namespace joined by a veth pair.

The copier runs in ``client``; the SUT (and its intercept) in ``sut``. The SUT namespace routes the
replay client range back through the veth, so the SUT answers replayed SYNs; the intercept drops
those answers before they leave. The SUT side's receive processing runs in a kernel thread of
its own (``receive_thread``), which the scheduler places wherever there is room; on request
(``steer_receive``) it is also steered away from the CPU the copier is pinned to (see
``steering``).

Everything the rig makes, processes included, goes at exit — on success, on an exception, on
KeyboardInterrupt, and on SIGTERM (turned into KeyboardInterrupt while a rig is up in the main
thread, unless someone else handles SIGTERM). When the owner is killed outright, SIGKILL
included, the rig's supervisor (``supervisor``), started before anything is made, stops its
processes and removes it within seconds; were the supervisor killed too, the next rig with the
same prefix removes it (see ``plumbing``).
"""

from __future__ import annotations

import ipaddress
import itertools
import os
import platform
import shutil
import signal
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Collection, Sequence
from types import FrameType, TracebackType
from typing import Any, Literal

from pytest_tcpcopy.backends.netns.plumbing import (
    RunNames,
    claim,
    kill_namespace_processes,
    reap_leftovers,
    remove_run,
    require_netns_support,
    sh,
)
from pytest_tcpcopy.backends.netns.steering import (
    RECEIVE_THREAD_OFFLOADS,
    RECEIVE_THREAD_QDISC,
    CpuSplit,
    receive_thread_problem,
    rps_mask,
    split_cpus,
)
from pytest_tcpcopy.backends.netns.supervisor import RigSupervisor
from pytest_tcpcopy.endpoint import Endpoint, parse_addr
from pytest_tcpcopy.errors import EnvironmentProblem, SutError, UsageError

Side = Literal["client", "sut"]
REPLAY_NET = "198.18.0.0/15"
_BACKLOG_SYSCTLS = ("net.core.somaxconn=65535", "net.ipv4.tcp_max_syn_backlog=65535")
_OFFLOADS = ("tso", "off", "gso", "off", "gro", "off", "tx", "off", "rx", "off")
_PROBE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "probe.py")  # run by path, stdlib only


class SutProcess:
    """A SUT command running in the ``sut`` namespace; stdout and stderr go to one log."""

    __slots__ = ("popen", "endpoint", "_log_path", "_kept_logs")

    def __init__(self, popen: subprocess.Popen, endpoint: Endpoint, log_path: str) -> None:
        self.popen = popen
        self.endpoint = endpoint
        self._log_path = log_path
        self._kept_logs: str | None = None

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    def exit_description(self) -> str:
        """How it ended: "exited with code N" or "was killed by SIGNAME" ("is running" if not)."""
        code = self.popen.poll()
        if code is None:
            return "is running"
        if code < 0:
            try:
                return f"was killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"was killed by signal {-code}"
        return f"exited with code {code}"

    def logs(self) -> str:
        """Everything the SUT wrote so far (kept after the rig is torn down)."""
        if self._kept_logs is not None:
            return self._kept_logs
        with open(self._log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def _keep_logs(self) -> None:
        self._kept_logs = self.logs()


class NetnsRig:
    """Two namespaces and a veth pair; use as ``with NetnsRig() as rig:``.

    ``link_net`` is the veth subnet (client gets its first host, the SUT the second; default
    ``10.214.X.0/30`` with X from the run id); ``replay_net`` the replay client range the SUT routes
    back; ``grace`` the seconds processes get between SIGTERM and SIGKILL at teardown;
    ``receive_thread`` (default) runs the SUT side's receive processing in a kernel thread rather
    than in the copier's sends; ``steer_receive=True`` steers it off the copier's CPU
    (``steering``; with two CPUs or more).
    """

    def __init__(
        self,
        prefix: str = "tcpcopy",
        *,
        link_net: str | None = None,
        replay_net: str = REPLAY_NET,
        grace: float = 3.0,
        steer_receive: bool = False,
        receive_thread: bool = True,
    ) -> None:
        self.names = RunNames.fresh(prefix)
        self.link_net = _network(
            link_net or f"10.214.{int(self.names.run_id, 16) % 256}.0/30", "link_net"
        )
        self.replay_net = _network(replay_net, "replay_net")
        if self.replay_net.overlaps(self.link_net):
            overlap = f"replay_net {self.replay_net} overlaps link_net {self.link_net}"
            raise UsageError(f"{overlap}; pick disjoint ranges")
        hosts = list(itertools.islice(self.link_net.hosts(), 2))
        if len(hosts) < 2:
            raise UsageError(
                f"link_net {self.link_net} has fewer than two host addresses; use a /30"
            )
        self.client_addr, self.sut_addr = str(hosts[0]), str(hosts[1])
        self.grace = grace
        self.steer_receive = steer_receive
        self.receive_thread = receive_thread
        self.receive_threaded = False  # set once the SUT side's receive runs in a thread of its own
        self.cpu_split: CpuSplit | None = None  # set once receive steering is in place
        self._procs: list[subprocess.Popen] = []
        self._suts: list[SutProcess] = []
        self._state_dir: str | None = None
        self._sigterm_before: Any = None
        self.supervisor: RigSupervisor | None = None

    @property
    def client_ns(self) -> str:
        return self.names.client_ns

    @property
    def sut_ns(self) -> str:
        return self.names.sut_ns

    @property
    def copier_cpus(self) -> frozenset[int] | None:
        """The CPUs to pin the copier to (for ``run_in(cpus=...)``); None when not steering."""
        return None if self.cpu_split is None else self.cpu_split.copier

    @property
    def client_if(self) -> str:
        return self.names.client_if

    @property
    def sut_if(self) -> str:
        return self.names.sut_if

    def namespace(self, side: Side) -> str:
        """The kernel name of the ``client`` or ``sut`` namespace."""
        if side == "client":
            return self.client_ns
        if side == "sut":
            return self.sut_ns
        raise UsageError(f"namespace side must be 'client' or 'sut', not {side!r}")

    def __enter__(self) -> NetnsRig:
        require_netns_support()
        reap_leftovers(self.names.prefix)
        if _in_main_thread():
            self._sigterm_before = signal.getsignal(signal.SIGTERM)
            if self._sigterm_before is signal.SIG_DFL:
                signal.signal(signal.SIGTERM, _interrupt_on_sigterm)
        try:
            self.supervisor = RigSupervisor(self.names)  # before anything of the run exists
            claim(self.names)
            self._state_dir = self.names.state_dir
            self._build()
        except BaseException:
            self._close(raise_problems=False)
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._close(raise_problems=exc_type is None)

    def _build(self) -> None:
        n = self.names
        prefixlen = self.link_net.prefixlen
        for namespace in n.namespaces:
            resolv_dir = n.resolv_dir(namespace)
            os.makedirs(resolv_dir, exist_ok=True)
            with open(os.path.join(resolv_dir, "resolv.conf"), "w", encoding="ascii") as f:
                f.write("nameserver 127.0.0.1\n")
            sh(["ip", "netns", "add", namespace])
        peer = ["peer", "name", n.sut_if, "netns", n.sut_ns]
        sh(["ip", "link", "add", n.client_if, "netns", n.client_ns, "type", "veth", *peer])
        sides = ((n.client_ns, n.client_if, self.client_addr), (n.sut_ns, n.sut_if, self.sut_addr))
        for namespace, link, addr in sides:
            sh(["ip", "-n", namespace, "addr", "add", f"{addr}/{prefixlen}", "dev", link])
            sh(["ip", "-n", namespace, "link", "set", "lo", "up"])
            sh(["ip", "-n", namespace, "link", "set", link, "up"])
            rp_filter = [f"net.ipv4.conf.{c}.rp_filter=0" for c in ("all", "default", link)]
            backlog = list(_BACKLOG_SYSCTLS) if namespace == n.sut_ns else []
            sh(["ip", "netns", "exec", namespace, "sysctl", "-q", "-w", *rp_filter, *backlog])
            self._offloads_off(namespace, link)
        back_to_client = [str(self.replay_net), "via", self.client_addr, "dev", n.sut_if]
        sh(["ip", "-n", n.sut_ns, "route", "add", *back_to_client])
        if self.receive_thread:
            self._thread_receive()
        if self.steer_receive:
            self._steer_receive()

    def _thread_receive(self) -> None:
        """Threaded NAPI on the SUT side of the veth, and a packet queue on the copier's side for
        the veth to push back into (see ``steering``). Not on a kernel whose veth cannot push
        back; a warning where ethtool or the kernel refuse, since the rig works without it, only
        slower."""
        if receive_thread_problem(platform.release()) is not None:
            return
        n = self.names
        threaded = f"/sys/class/net/{n.sut_if}/threaded"
        script = f"set -e; echo 1 > {threaded}; test \"$(cat {threaded})\" != 0"
        queue = ["tc", "qdisc", "replace", "dev", n.client_if, "root", *RECEIVE_THREAD_QDISC]
        try:
            if shutil.which("ethtool") is None:
                raise EnvironmentProblem("ethtool not found (install the ethtool package)")
            sh(["ip", "netns", "exec", n.client_ns, *queue])
            sh(["ip", "netns", "exec", n.sut_ns, "ethtool", "-K", n.sut_if, *RECEIVE_THREAD_OFFLOADS])
            sh(["ip", "netns", "exec", n.sut_ns, "/bin/sh", "-c", script])
        except EnvironmentProblem as exc:
            warnings.warn(
                f"the SUT side's receive work stays in the copier's sends ({exc})",
                RuntimeWarning,
                stacklevel=4,
            )
            return
        self.receive_threaded = True

    def _steer_receive(self) -> None:
        split = split_cpus(os.sched_getaffinity(0))
        if split is None:
            return
        n = self.names
        queues = f"/sys/class/net/{n.sut_if}/queues/rx-*"
        script = f"set -e; for q in {queues}; do echo {rps_mask(split.receive)} > $q/rps_cpus; done"
        try:
            sh(["ip", "netns", "exec", n.sut_ns, "/bin/sh", "-c", script])
        except EnvironmentProblem as exc:  # a kernel without RPS: slower, not wrong
            warnings.warn(
                f"receive steering is off ({exc}): the SUT's receive work runs on the copier's CPU",
                RuntimeWarning,
                stacklevel=4,
            )
            return
        self.cpu_split = split

    @staticmethod
    def _offloads_off(namespace: str, link: str) -> None:
        if shutil.which("ethtool") is None:
            warnings.warn(
                f"ethtool not found: offloads stay on for {link} in {namespace}, so captures "
                "there see merged GSO/GRO segments; install the ethtool package",
                RuntimeWarning,
                stacklevel=3,
            )
            return
        sh(["ip", "netns", "exec", namespace, "ethtool", "-K", link, *_OFFLOADS])

    def _require_up(self, method: str) -> str:
        """The run's state directory; UsageError outside the with-block."""
        if self._state_dir is None:
            raise UsageError(
                f"NetnsRig.{method}() needs the rig up: call it inside `with NetnsRig() as rig:`"
            )
        return self._state_dir

    def run_in(
        self,
        side: Side,
        argv: Sequence[str],
        *,
        cpus: Collection[int] | None = None,
        **popen_kwargs: Any,
    ) -> subprocess.Popen:
        """Start ``argv`` in the namespace as its own process group, stopped at teardown; with
        ``cpus``, pinned to them (e.g. ``rig.copier_cpus``)."""
        self._require_up("run_in")
        popen_kwargs["start_new_session"] = True
        popen = subprocess.Popen(
            ["ip", "netns", "exec", self.namespace(side), *argv], **popen_kwargs
        )
        self._procs.append(popen)
        if cpus is not None:
            try:  # kept across `ip netns exec`'s exec of argv
                os.sched_setaffinity(popen.pid, cpus)
            except ProcessLookupError:
                pass  # already gone: its exit status tells the caller why
        return popen

    def start_sut(
        self,
        argv: Sequence[str],
        port: int,
        *,
        ready_timeout: float = 10.0,
        http_path: str | None = None,
    ) -> SutProcess:
        """Start the SUT in ``sut`` and return once it accepts TCP connections from ``client``.

        With ``http_path``, a GET of it must also answer below 400. Raises SutError with the SUT's
        output when it exits first, or when it is not ready within ``ready_timeout`` seconds (it is
        then stopped).
        """
        log_path = os.path.join(self._require_up("start_sut"), f"sut-{len(self._suts)}.log")
        with open(log_path, "wb") as log:
            popen = self.run_in(
                "sut", argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        sut = SutProcess(popen, Endpoint(parse_addr(self.sut_addr), port), log_path)
        self._suts.append(sut)
        deadline = time.monotonic() + ready_timeout
        while True:
            if not sut.alive:
                problem = f"exited with code {sut.returncode} before accepting connections"
                raise SutError(f"SUT {argv[0]!r} {problem} on {sut.endpoint}", logs=sut.logs())
            reason = self._probe(port, http_path)
            if reason is None:
                return sut
            if time.monotonic() >= deadline:
                _stop_groups([popen], grace=1.0)
                problem = f"not ready on {sut.endpoint} (probed from the client namespace)"
                raise SutError(
                    f"SUT {argv[0]!r} {problem} within {ready_timeout:g}s: {reason}",
                    logs=sut.logs(),
                )
            time.sleep(0.05)

    def _probe(self, port: int, http_path: str | None) -> str | None:
        target = [self.sut_addr, str(port), *([http_path] if http_path else [])]
        argv = [
            "ip",
            "netns",
            "exec",
            self.client_ns,
            sys.executable,
            "-I",
            _PROBE,
            *target,
        ]
        done = subprocess.run(
            argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=30
        )
        if done.returncode == 0:
            return None
        return (
            done.stdout.strip()
            or done.stderr.strip()
            or f"probe exited with code {done.returncode}"
        )

    def _close(self, *, raise_problems: bool) -> None:
        held: list[int] = []
        sigint_before: Any = None
        if _in_main_thread():
            sigint_before = signal.signal(signal.SIGINT, lambda signum, frame: held.append(signum))
            signal.signal(signal.SIGTERM, lambda signum, frame: held.append(signum))
        try:
            problems = self._teardown()
            if self.supervisor is not None:
                self.supervisor.release()
                self.supervisor = None
        finally:
            if _in_main_thread():
                signal.signal(signal.SIGINT, sigint_before)
                signal.signal(signal.SIGTERM, self._sigterm_before)
        if problems:
            message = f"netns rig {self.names.run} teardown incomplete: " + "; ".join(problems)
            if raise_problems and not held:
                raise EnvironmentProblem(message)
            warnings.warn(message, RuntimeWarning, stacklevel=3)
        for signum in held:
            signal.raise_signal(signum)

    def _teardown(self) -> list[str]:
        """Stop processes, then remove the run's objects; each stage runs even if one failed."""
        problems: list[str] = []
        try:
            _stop_groups(self._procs, self.grace)
            kill_namespace_processes(self.names.namespaces, self.grace)
        except (EnvironmentProblem, OSError, subprocess.SubprocessError) as exc:
            problems.append(f"stopping processes: {exc}")
        for sut in self._suts:
            sut._keep_logs()
        self._state_dir = None
        try:
            remove_run(self.names)
        except EnvironmentProblem as exc:
            problems.append(str(exc))
        return problems


def _stop_groups(procs: Sequence[subprocess.Popen], grace: float) -> None:
    """SIGTERM each live process group, SIGKILL those still running after ``grace`` seconds."""
    for popen in procs:
        if popen.poll() is None:
            _killpg(popen.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for popen in procs:
        try:
            popen.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _killpg(popen.pid, signal.SIGKILL)
            popen.wait()


def _killpg(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        pass


def _network(text: str, what: str) -> ipaddress.IPv4Network:
    try:
        return ipaddress.IPv4Network(text)
    except ValueError as exc:
        raise UsageError(f"{what} must be an IPv4 network like 10.214.7.0/30: {exc}") from None


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _interrupt_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt("SIGTERM while a netns rig was up")
