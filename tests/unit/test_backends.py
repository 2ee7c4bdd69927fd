"""The backends' shared shape and helpers, without Docker or root: one interface, one readiness
loop, held signals."""

from __future__ import annotations

import inspect
import os
import signal

import pytest

from pytest_tcpcopy.backends import open_backend
from pytest_tcpcopy.backends.base import Backend
from pytest_tcpcopy.backends.docker.backend import DockerBackend
from pytest_tcpcopy.backends.netns.backend import NetnsBackend
from pytest_tcpcopy.backends.readiness import wait_until_ready
from pytest_tcpcopy.backends.signals import held_signals, interrupt_on_sigterm, raise_held


@pytest.mark.parametrize("method", ["start_sut", "replay", "__enter__", "__exit__"])
def test_both_backends_have_the_interface_s_signatures(method):
    def shape(cls) -> list[tuple[str, object, object]]:
        params = inspect.signature(getattr(cls, method)).parameters.values()
        return [(p.name, p.kind, p.default) for p in params if p.name not in ("self", "exc", "exc_type", "tb")][:6]

    assert shape(DockerBackend) == shape(NetnsBackend) == shape(Backend)


def test_open_backend_makes_each_kind_without_starting_anything():
    assert isinstance(open_backend("netns"), NetnsBackend)
    docker = open_backend("docker", keep=True, log=print)
    assert isinstance(docker, DockerBackend) and docker.keep and docker.network is None
    with pytest.raises(ValueError, match="unknown backend 'vm'; known: docker, netns"):
        open_backend("vm")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_waiting_returns_once_the_probe_says_ready():
    clock, answers = Clock(), iter(["refused", "refused", None])
    wait_until_ready(lambda: next(answers), timeout=5, timed_out=RuntimeError, interval=0.5, clock=clock,
                     sleep=clock.sleep)  # fmt: skip
    assert clock.slept == [0.5, 0.5]


def test_waiting_gives_up_with_the_last_reason():
    clock, tries = Clock(), iter(range(100))
    with pytest.raises(TimeoutError, match="not yet 4"):
        wait_until_ready(lambda: f"not yet {next(tries)}", timeout=2, timed_out=TimeoutError, interval=0.5,
                         clock=clock, sleep=clock.sleep)  # fmt: skip


def test_a_probe_that_raises_stops_the_wait_at_once():
    def probe() -> str:
        raise ProcessLookupError("exited with code 3")

    with pytest.raises(ProcessLookupError):
        wait_until_ready(probe, timeout=60, timed_out=RuntimeError, sleep=pytest.fail)


def test_held_signals_arrive_after_the_block():
    caught: list[int] = []
    before = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))  # our own disposition
    try:
        with held_signals() as held:
            os.kill(os.getpid(), signal.SIGINT)
            assert held == [signal.SIGINT] and caught == []
        raise_held(held)
        assert caught == [signal.SIGINT]
    finally:
        signal.signal(signal.SIGINT, before)


def test_sigterm_interrupts_while_a_run_is_up_and_not_after():
    before = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        restore = interrupt_on_sigterm("a test run")
        with pytest.raises(KeyboardInterrupt, match="SIGTERM while a test run was up"):
            os.kill(os.getpid(), signal.SIGTERM)
        restore()
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    finally:
        signal.signal(signal.SIGTERM, before)
