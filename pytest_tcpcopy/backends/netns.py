"""The ``netns`` backend: a SUT run as a local command in a fresh network namespace, as root.

``NetnsBackend`` brings up the rig (client and SUT namespaces on a veth pair), starts the SUT and
the intercept beside it, and replays captures with the copier in the client namespace, each run
as a subprocess of ours (``ip netns exec``) so this process never changes namespace. Leaving the
``with`` block stops everything and removes the namespaces, also on error and Ctrl-C.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import tempfile
from collections.abc import Sequence

from ..channel.protocol import DEFAULT_PORT
from ..errors import EnvironmentProblem, SutError
from ..netns import NetnsRig, SutProcess

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
    ) -> None:
        self.sut_argv = list(sut_argv)
        self.port = port
        self.capture_responses = capture_responses
        self.ready_timeout = ready_timeout
        self.http_path = http_path
        self.rig = NetnsRig(prefix)
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

    def replay(self, capture: str | os.PathLike, *copier_args: str, timeout: float = 3700.0) -> dict:
        """Replay ``capture`` into the SUT; return the copier's JSON result document.

        ``copier_args`` are extra ``pytest-tcpcopy replay`` options (``--speed``, ``--amplify`` ...).
        A SUT that died during the replay is noted in the result, with its logs.
        """
        argv = [sys.executable, "-m", "pytest_tcpcopy", "replay", os.fspath(capture), "--json",
                "--target", self.target, "--intercept", self.intercept_at, *copier_args]  # fmt: skip
        if self.capture_responses and "--capture-responses" not in copier_args:
            argv.append("--capture-responses")
        copier = self.rig.run_in("client", argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            out, err = copier.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            copier.kill()
            raise SutError(f"the copier did not finish within {timeout:g} s") from None
        if copier.returncode != 0:
            raise EnvironmentProblem(f"copier failed (exit {copier.returncode}): {(err or out).strip()[-2000:]}")
        data = json.loads(out)
        assert self.sut is not None
        if not self.sut.alive:
            data["notes"].append(f"the SUT exited with code {self.sut.returncode} during the replay")
            data["sut_logs"] = self.sut.logs()[-8000:]
        return data
