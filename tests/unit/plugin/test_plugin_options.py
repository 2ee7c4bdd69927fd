"""The plugin's options, ini twins, precedence, markers and header, through pytester (no replay)."""

from __future__ import annotations

import pytest

from pytest_tcpcopy.settings import SETTINGS, Kind

pytest_plugins = ["pytester"]


def test_every_declared_setting_has_an_option_an_ini_twin_and_help(pytester):
    lines = [line.strip() for line in pytester.runpytest("--help").stdout.lines]
    for spec in SETTINGS:
        assert any(line.split(" ")[0].split("=")[0] == spec.option for line in lines), spec.name
        assert any(line.startswith(f"{spec.ini} (") for line in lines), spec.name
        assert spec.option == "--tcpcopy-" + spec.name.replace("_", "-") and spec.ini == "tcpcopy_" + spec.name


def test_every_declared_setting_is_reachable_from_command_line_ini_and_marker(pytester):
    """The same raw value, given in each place, lands in the fixture's settings; a setting of
    the whole run is refused in a marker, with a message naming its option."""
    from pytest_tcpcopy.settings import Settings

    expected = {spec.name: getattr(Settings().with_overrides({spec.name: SAMPLE_VALUES[spec.name]}, "t"), spec.name)
                for spec in SETTINGS}  # fmt: skip

    def tests(marked: bool) -> str:
        out = ["import pytest\n"]
        for spec in SETTINGS:
            if marked:
                out.append(f"@pytest.mark.tcpcopy({spec.name}={SAMPLE_VALUES[spec.name]!r})")
            out.append(f"def test_{spec.name}(tcpcopy):\n"
                       f"    assert repr(tcpcopy.settings.{spec.name}) == {repr(expected[spec.name])!r}\n")
        return "\n".join(out)

    path = pytester.makepyfile(test_settings=tests(marked=False))
    argv = []
    for spec in SETTINGS:
        argv += [spec.option] if spec.kind is Kind.FLAG else [spec.option, SAMPLE_VALUES[spec.name]]
    pytester.runpytest(*argv, str(path), "-p", "no:cacheprovider").assert_outcomes(passed=len(SETTINGS))
    pytester.makeini("[pytest]\n" + "".join(f"{spec.ini} = {SAMPLE_VALUES[spec.name]}\n" for spec in SETTINGS))
    pytester.runpytest(str(path), "-p", "no:cacheprovider").assert_outcomes(passed=len(SETTINGS))
    pytester.makeini("[pytest]\n")
    path = pytester.makepyfile(test_settings=tests(marked=True))
    result = pytester.runpytest(str(path), "-p", "no:cacheprovider")
    run_wide = [spec for spec in SETTINGS if not spec.per_test]
    assert {spec.name for spec in run_wide} == {"report", "live", "mirror_listen", "duration", "redact", "build_arg",
                                                "pull", "record_to", "sanity", "reproducers"}  # fmt: skip
    result.assert_outcomes(passed=len(SETTINGS) - len(run_wide), errors=len(run_wide))
    for spec in run_wide:
        message = f"{spec.name} applies to the whole run, not to one test; set it with {spec.option}"
        result.stdout.fnmatch_lines([f"*{message}*"])


# A raw value (as text, the way the command line and ini file give it) for every setting.
# Paths to project files are absolute here: the ini file's relative ones start at the rootdir.
SAMPLE_VALUES = {
    "pcap": "/data/a.pcap", "image": "svc:2", "command": "python3 app.py", "port": "8080",
    "baseline": "dir:/data/rec", "update_baseline": "true", "speed": "2", "sample": "50", "filter": "method=GET",
    "report": "r.json", "keep": "true", "backend": "netns", "amplify": "3", "ready_timeout": "5",
    "http_path": "/health", "noise": "true", "live": "eth0", "mirror_listen": "127.0.0.1:36525", "duration": "3",
    "ignore": "body.items[*].id", "ignore_value": "[0-9a-f]{8}", "float_tolerance": "0.01", "ignore_order": "true",
    "redact": "re:tenant-[0-9]+", "build_arg": "BASE_IMAGE=debian:12", "pull": "true", "sut_cap_add": "sys_ptrace",
    "sut_new_privileges": "true", "record_to": "live.pcapng.gz", "baseline_keep_unused": "true", "sanity": "warn",
    "reproducers": "out/repro", "max_sessions": "64", "response_timeout": "2.5", "items": "endpoint", "full_output": "true",
}  # fmt: skip


def test_sample_values_cover_every_setting():
    assert set(SAMPLE_VALUES) == {spec.name for spec in SETTINGS}


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


def test_markers_reach_the_runner_and_the_closest_wins(pytester):
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.amplify(5)
        @pytest.mark.tcpcopy(speed=2)
        def test_marked(tcpcopy):
            assert (tcpcopy.settings.speed, tcpcopy.settings.amplify) == (2, 5)
            assert tcpcopy.label.endswith("::test_marked")

        def test_unmarked(tcpcopy):
            assert (tcpcopy.settings.speed, tcpcopy.settings.amplify) == (3, 1)

        @pytest.mark.tcpcopy(speed=4, sample=10)
        class TestClass:
            @pytest.mark.tcpcopy(speed=5)
            def test_closest(self, tcpcopy):
                assert (tcpcopy.settings.speed, tcpcopy.settings.sample) == (5, 10)
        """
    )
    pytester.runpytest("--tcpcopy-speed", "3").assert_outcomes(passed=3)


def test_precedence_marker_over_command_line_over_ini(pytester):
    pytester.makeini("[pytest]\ntcpcopy_sample = 20\ntcpcopy_amplify = 2\ntcpcopy_speed = 3\n")
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.tcpcopy(sample=30)
        def test_x(tcpcopy):
            assert (tcpcopy.settings.sample, tcpcopy.settings.amplify, tcpcopy.settings.speed) == (30, 4, 3)
        """
    )
    pytester.runpytest("--tcpcopy-sample", "40", "--tcpcopy-amplify", "4").assert_outcomes(passed=1)


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
    assert "--tcpcopy-report" in result.stderr.str() and "give a .html or .json file name" in result.stderr.str()


def test_report_is_repeatable_but_not_twice_the_same_path(pytester):
    pytester.makepyfile("def test_x(tcpcopy):\n"
                        "    assert [p.name for p in tcpcopy.settings.report] == ['a.json', 'b.html']\n")  # fmt: skip
    pytester.runpytest("--tcpcopy-report", "a.json", "--tcpcopy-report", "b.html").assert_outcomes(passed=1)
    twice = pytester.runpytest("--tcpcopy-report", "a.json", "--tcpcopy-report", "./a.json")
    assert twice.ret == pytest.ExitCode.USAGE_ERROR
    assert "command-line option --tcpcopy-report" in twice.stderr.str() and "given twice" in twice.stderr.str()


def test_the_rig_commands_take_their_sut_options_from_the_declarations(capsys):
    from pytest_tcpcopy.cli import build_parser
    from pytest_tcpcopy.settings import SPECS

    parser = build_parser()
    args = parser.parse_args(["docker-run", "x.pcap", "--image", "svc:2", "--port", "8080", "--keep",
                              "--ready-timeout", "5", "--capture-port", "80", "--speed", "2"])  # fmt: skip
    assert (args.image, args.port, args.keep, args.ready_timeout, args.http_path) == ("svc:2", 8080, True, 5.0, None)
    assert (args.server_ports, args.speed) == ([80], 2.0)
    assert parser.parse_args(["netns-run", "x.pcap", "--port", "80"]).ready_timeout == 30.0
    with pytest.raises(SystemExit):
        parser.parse_args(["netns-run", "x.pcap", "--port", "0"])
    assert "argument --port: expected a TCP port, 1..65535, got '0'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parser.parse_args(["docker-run", "--help"])
    assert " ".join(SPECS["ready_timeout"].help.split()) in " ".join(capsys.readouterr().out.split())
