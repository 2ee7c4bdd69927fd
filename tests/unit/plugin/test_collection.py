"""Which traffic becomes test items, and that collecting it replays nothing (pytester, no root)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "jsonservice" / "traffic.pcap.gz"
# A SUT command that leaves a mark if anything ever starts it.
SUT = ["--tcpcopy-backend", "netns", "--tcpcopy-port", "8080", "--tcpcopy-command", "touch started"]


@pytest.fixture
def project(pytester):
    """Tests using the fixture, and a capture configured in the ini file, beside them."""
    shutil.copy(EXAMPLE, pytester.path / "traffic.pcap.gz")
    pytester.makeini("[pytest]\ntcpcopy_pcap = traffic.pcap.gz\n")
    pytester.makepyfile(test_load="def test_one(tcpcopy):\n    pass\n\ndef test_two():\n    pass\n")
    return pytester


def collected(result) -> list[str]:
    return [line for line in result.stdout.lines if "::" in line and not line.startswith(("=", "ERROR"))]


def test_without_paths_the_configured_capture_is_collected_and_nothing_replays(project):
    result = project.runpytest("--collect-only", "-q", *SUT)
    items = collected(result)
    assert len(items) == 56  # 54 exchanges and the two tests
    assert "traffic.pcap.gz::s0001-GET /api/users/2" in items and "test_load.py::test_one" in items
    assert not (project.path / "started").exists()  # collection replayed nothing


def test_explicit_test_paths_collect_only_those_tests(project):
    result = project.runpytest("--collect-only", "-q", "test_load.py", *SUT)
    assert collected(result) == ["test_load.py::test_one", "test_load.py::test_two"]


def test_a_capture_given_as_a_path_is_collected(project):
    result = project.runpytest("--collect-only", "-q", "traffic.pcap.gz", "test_load.py::test_two", *SUT)
    items = collected(result)
    assert len(items) == 55 and items[-1] == "test_load.py::test_two"
    one = project.runpytest("--collect-only", "-q", "traffic.pcap.gz::s0003-GET /api/users/5", *SUT)
    assert collected(one) == ["traffic.pcap.gz::s0003-GET /api/users/5"]


def test_sample_and_filter_choose_the_items(project):
    result = project.runpytest("--collect-only", "-q", "--tcpcopy-filter", "method=POST path=^/api/orders", *SUT)
    items = [i for i in collected(result) if i.startswith("traffic")]
    assert items and all("-POST /api/orders" in i for i in items)


def test_a_capture_outside_the_rootdir_is_named_by_its_path(pytester, tmp_path_factory):
    outside = tmp_path_factory.mktemp("elsewhere") / "traffic.pcap.gz"  # no ini file beside it (the example has one)
    shutil.copy(EXAMPLE, outside)
    result = pytester.runpytest("--collect-only", "-q", "--rootdir", str(pytester.path), str(outside), *SUT)
    assert f"{outside}::s0001-GET /api/users/2" in collected(result)


def test_a_capture_without_a_sut_is_one_usage_error_before_collection(project):
    result = project.runpytest("traffic.pcap.gz")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert result.stderr.str().strip().splitlines() == ["ERROR: traffic.pcap.gz: no SUT to replay it into: set --tcpcopy-image (docker "
                                   "backend) or --tcpcopy-command (netns backend), and --tcpcopy-port"]  # fmt: skip
    assert "collected" not in result.stdout.str()
    only_the_port = project.runpytest("traffic.pcap.gz", "--tcpcopy-image", "svc:2")
    assert only_the_port.stderr.str().strip().splitlines() == ["ERROR: traffic.pcap.gz: no SUT to replay it into: set --tcpcopy-port"]


def test_a_configured_capture_without_a_sut_and_nothing_else_to_run_says_why(project):
    (project.path / "test_load.py").unlink()
    result = project.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert result.stderr.str().strip().splitlines() == ["ERROR: --tcpcopy-pcap / tcpcopy_pcap names traffic.pcap.gz, but no SUT to replay "
                                   "it into: set --tcpcopy-image (docker backend) or --tcpcopy-command (netns "
                                   "backend), and --tcpcopy-port"]  # fmt: skip


def test_without_a_sut_the_configured_capture_only_feeds_the_fixture(project):
    result = project.runpytest("--collect-only", "-q")
    assert collected(result) == ["test_load.py::test_one", "test_load.py::test_two"]


def test_a_corrupt_capture_is_a_collection_error_naming_the_file(pytester):
    (pytester.path / "broken.pcap").write_bytes(b"not a capture at all")
    result = pytester.runpytest("broken.pcap", *SUT)
    result.stdout.fnmatch_lines(["*ERROR collecting broken.pcap*", "*broken.pcap*"])
    assert "Traceback" not in result.stdout.str()


def test_live_traffic_is_one_item_per_source_and_collecting_takes_none(project):
    result = project.runpytest("--collect-only", "-q", "--tcpcopy-mirror-listen", "127.0.0.1:36599", *SUT)
    items = collected(result)
    assert "tcpcopy:mirror:127.0.0.1:36599" in result.stdout.lines
    assert len(items) == 56
    assert not (project.path / "started").exists()
