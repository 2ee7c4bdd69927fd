"""One supervisor per netns rig: whatever kills the rig's owner, the rig goes within seconds.

``NetnsRig`` starts it before it makes anything: ``python3 -m pytest_tcpcopy.backends.netns.supervisor
PREFIX RUN_ID``, a process in a session of its own (a Ctrl-C or SIGTERM for the owner's process
group does not reach it) that says ``ready`` and then reads its stdin, a pipe whose only writer is
the owner. When the owner lets go or dies, by any signal, SIGKILL included, the pipe ends; the
supervisor then stops every process inside the run's two namespaces (the SUT and its children,
the intercept, the copier, a probe: SIGTERM, SIGKILL after ``GRACE`` seconds) and removes the
namespaces (the intercept's rules and routes live and die with them), their resolver directories,
any veth and the run's state directory. It finds them by the run's names, never by a list the
owner kept, and looks again after ``SETTLE`` seconds, so a namespace whose creation was under way
when the owner died goes too. The owner's own teardown runs first when it can; the supervisor then
finds nothing left.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time

from pytest_tcpcopy.backends.netns.plumbing import RunNames, kill_namespace_processes, remove_run, run_exists
from pytest_tcpcopy.backends.watchdog import WatchdogNotReady, start_watchdog
from pytest_tcpcopy.errors import EnvironmentProblem

GRACE = 1.0  # the owner is gone: its processes get this long to stop on SIGTERM
SETTLE = 0.5
LIMIT = 20.0
RELEASED = b"released\n"  # the owner's last words when it tore the rig down itself


class RigSupervisor:
    """The running supervisor of one rig; ``release()`` when the owner has torn the rig down."""

    def __init__(self, names: RunNames) -> None:
        try:
            self._process = start_watchdog("pytest_tcpcopy.backends.netns.supervisor", names.prefix, names.run_id)
        except WatchdogNotReady as exc:
            raise EnvironmentProblem(f"the supervisor of netns run {names.run} did not start: {exc.reason}") from None

    @property
    def pid(self) -> int:
        return self._process.pid

    def release(self) -> None:
        """End the watch after the owner's teardown: the supervisor removes whatever is left of
        the run (nothing, after a complete teardown) once, and exits."""
        assert self._process.stdin is not None
        try:
            self._process.stdin.write(RELEASED)
            self._process.stdin.close()
        except BrokenPipeError:
            pass  # it is gone already (killed): the owner's own teardown removed the run
        try:
            self._process.wait(timeout=LIMIT + GRACE + 10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        if self._process.stderr is not None:
            self._process.stderr.close()


def remove_until_settled(names: RunNames, *, grace: float = GRACE, settle: float = SETTLE, limit: float = LIMIT) -> None:
    """Stop the run's processes and remove its objects, then look again after ``settle`` seconds,
    until nothing of it is left (or ``limit`` seconds have passed: the last problem is raised)."""
    deadline = time.monotonic() + limit
    while True:
        try:
            kill_namespace_processes(names.namespaces, grace)
            remove_run(names)
        except EnvironmentProblem:
            if time.monotonic() >= deadline:
                raise
        if settle:
            time.sleep(settle)
        if not run_exists(names) or time.monotonic() >= deadline:
            return


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 -m pytest_tcpcopy.backends.netns.supervisor",
        description="Wait for end of file on stdin, then stop the rig's processes and remove its namespaces.",
    )
    parser.add_argument("prefix")
    parser.add_argument("run_id")
    args = parser.parse_args(argv)
    for signum in (signal.SIGINT, signal.SIGHUP):  # the owner's terminal going away is no reason to stop
        signal.signal(signum, signal.SIG_IGN)
    names = RunNames(args.prefix, args.run_id)
    print("ready", flush=True)
    said = b""
    while chunk := sys.stdin.buffer.read(65536):
        said = (said + chunk)[-len(RELEASED) :]
    try:
        remove_until_settled(names, settle=0.0 if said == RELEASED else SETTLE)
    except EnvironmentProblem as exc:
        try:
            print(f"supervisor of netns run {names.run}: {exc}", file=sys.stderr, flush=True)
        except OSError:
            pass  # nobody reads: the owner is gone
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
