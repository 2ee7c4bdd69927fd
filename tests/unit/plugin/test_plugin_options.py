"""The plugin's options, ini twins, precedence, markers and header, through pytester (no replay)."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]


def test_every_option_has_an_ini_twin_and_help(pytester):
    result = pytester.runpytest("--help")
    out = result.stdout.str()
    for name in ("pcap", "image", "command", "port", "baseline", "update-baseline", "speed", "sample",
                 "filter", "report", "keep", "backend", "amplify"):  # fmt: skip
        assert f"--tcpcopy-{name}" in out
        assert f"tcpcopy_{name.replace('-', '_')} " in out or f"tcpcopy_{name.replace('-', '_')}\n" in out


def test_header_shows_the_effective_setup_in_one_line(pytester):
    pytester.makeini("[pytest]\ntcpcopy_backend = netns\ntcpcopy_speed = 2\n")
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest("--tcpcopy-command", "python3 app.py", "--tcpcopy-port", "8080")
    header = [line for line in result.stdout.lines if line.startswith("tcpcopy:")]
    assert len(header) == 1
    assert "backend: netns" in header[0] and "speed: x2" in header[0] and "python3 app.py:8080" in header[0]


def test_command_line_beats_ini(pytester):
    pytester.makeini("[pytest]\ntcpcopy_speed = 2\ntcpcopy_sample = 50\n")
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest("--tcpcopy-speed", "max", "--tcpcopy-command", "x", "--tcpcopy-port", "1")
    header = next(line for line in result.stdout.lines if line.startswith("tcpcopy:"))
    assert "speed: max" in header and "sample: 50%" in header


@pytest.mark.parametrize(
    ("args", "ini", "expected"),
    [
        (["--tcpcopy-speed", "fast"], "", "command-line option --tcpcopy-speed: bad value 'fast'"),
        ([], "tcpcopy_sample = 150\n", "ini option tcpcopy_sample: bad value '150'"),
        (["--tcpcopy-backend", "vm"], "", "--tcpcopy-backend: bad value 'vm' for backend: expected one of docker, netns"),
        (["--tcpcopy-baseline", "release:v1"], "", "expected capture, none, image:REF"),
        (["--tcpcopy-filter", "verb=GET"], "", "unknown filter 'verb'"),
    ],
)
def test_bad_values_name_their_source(pytester, args, ini, expected):
    if ini:
        pytester.makeini("[pytest]\n" + ini)
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert expected in result.stderr.str()


def test_markers_are_registered_for_strict_markers(pytester):
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.amplify(5)
        @pytest.mark.tcpcopy(speed=2, sample=10)
        def test_x(): pass
        """
    )
    result = pytester.runpytest("--strict-markers")
    result.assert_outcomes(passed=1)


@pytest.mark.parametrize(
    ("marker", "expected"),
    [
        ("amplify(0)", "amplify(n) takes one positive integer"),
        ("amplify('5')", "amplify(n) takes one positive integer"),
        ("amplify(2, 3)", "amplify(n) takes one positive integer"),
        ("tcpcopy(velocity=2)", "unknown setting 'velocity'"),
        ("tcpcopy(speed=-1)", "bad value -1 for speed"),
        ("tcpcopy(2)", "keyword settings only"),
    ],
)
def test_bad_markers_fail_with_a_clear_message(pytester, marker, expected):
    pytester.makepyfile(f"import pytest\n\n@pytest.mark.{marker}\ndef test_x(): pass\n")
    result = pytester.runpytest()
    assert expected in result.stdout.str() + result.stderr.str()
    assert result.ret != 0


def test_markers_reach_the_runner(pytester):
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.amplify(5)
        @pytest.mark.tcpcopy(speed=2)
        def test_marked(tcpcopy, pytestconfig):
            from pytest_tcpcopy.plugin import STATE_KEY
            assert pytestconfig.stash[STATE_KEY].marker_settings == {"speed": 2, "amplify": 5}

        def test_unmarked(pytestconfig):
            from pytest_tcpcopy.plugin import STATE_KEY
            assert pytestconfig.stash[STATE_KEY].marker_settings == {}
        """
    )
    pytester.runpytest().assert_outcomes(passed=2)


def test_fixtures_follow_the_options_and_can_be_overridden(pytester):
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture(scope="session")
        def tcpcopy_sut():
            return {"image": None, "command": ("python3", "other.py"), "port": 9999}
        """
    )
    pytester.makepyfile(
        """
        from pathlib import Path

        def test_fixtures(tcpcopy, tcpcopy_capture, tcpcopy_baseline):
            assert tcpcopy_capture == (Path("a.pcap"),)
            assert str(tcpcopy_baseline) == "dir:recorded"
            assert tcpcopy.settings.command == ("python3", "other.py") and tcpcopy.settings.port == 9999
        """
    )
    result = pytester.runpytest("--tcpcopy-pcap", "a.pcap", "--tcpcopy-baseline", "dir:recorded", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_report_path_must_be_html_or_json(pytester):
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest("--tcpcopy-report", "out.txt")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--tcpcopy-report" in result.stderr.str()
