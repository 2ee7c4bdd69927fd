"""Where the comparison, image, privilege and recording settings land (pytester and the settings
themselves, no replay)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_tcpcopy.backends.base import SutSpec
from pytest_tcpcopy.baselines import strategy_for
from pytest_tcpcopy.errors import UsageError
from pytest_tcpcopy.runner import candidate_spec
from pytest_tcpcopy.settings import Sanity, Settings

pytest_plugins = ["pytester"]


def settings(**values) -> Settings:
    return Settings().with_overrides(values, "test")


def test_every_comparison_setting_reaches_the_diff_config(pytester):
    pytester.makeini("[pytest]\ntcpcopy_ignore =\n    body.created\n    root['headers']['x-api']\n"
                     "tcpcopy_redact = tenant\n")  # fmt: skip
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.tcpcopy(float_tolerance=0.5, ignore_order=True, ignore_value=["[0-9a-f]{32}"])
        def test_diff(tcpcopy):
            diff = tcpcopy.diff
            assert diff.ignore_paths == ("body.created", "root['headers']['x-api']")
            assert (diff.float_tolerance, diff.ignore_order, diff.ignore_value_patterns) == (0.5, True, ("[0-9a-f]{32}",))
            assert diff.redaction.secret_name("x-tenant-id") and diff.redaction.secret_name("password")
            assert diff.excluded_path_regexes() == ["^root\\\\['body'\\\\]\\\\['created'\\\\]$",
                                                    "^root\\\\['headers'\\\\]\\\\['x\\\\-api'\\\\]$"]
        """
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


@pytest.mark.parametrize(
    ("args", "ini", "marker", "expected"),
    [
        (["--tcpcopy-ignore", "body..id"], "", "",
         "command-line option --tcpcopy-ignore: bad value ['body..id'] for ignore: cannot read ignore path 'body..id' "
         "at character 4"),
        ([], "tcpcopy_ignore = root['body'\n", "",
         "ini option tcpcopy_ignore: bad value [\"root['body'\"] for ignore: cannot read ignore path"),
        ([], "", "tcpcopy(ignore=['body[x'])", "marker on test_x.py::test_x: bad value ['body[x'] for ignore"),
        (["--tcpcopy-float-tolerance", "-1"], "", "", "bad value '-1' for float_tolerance: expected a number >= 0"),
        (["--tcpcopy-ignore-value", "(["], "", "", "bad value ['(['] for ignore_value: regex '(['"),
        (["--tcpcopy-redact", "re:(["], "", "", "bad value ['re:(['] for redact: regex '(['"),
        (["--tcpcopy-build-arg", "no-equals"], "", "", "'no-equals': expected KEY=VALUE"),
        (["--tcpcopy-sut-cap-add", "net raw"], "", "", "expected a capability name like NET_RAW"),
        (["--tcpcopy-record-to", "live.txt"], "", "", "name the capture file *.pcap or *.pcapng"),
        (["--tcpcopy-sanity", "loud"], "", "", "bad value 'loud' for sanity: expected fail, warn or off"),
    ],
)  # fmt: skip
def test_a_bad_value_is_a_usage_error_naming_where_it_came_from(pytester, args, ini, marker, expected):
    if ini:
        pytester.makeini("[pytest]\n" + ini)
    pytester.makepyfile(test_x=f"import pytest\n\n{'@pytest.mark.' + marker if marker else ''}\ndef test_x(): pass\n")
    result = pytester.runpytest(*args, "-p", "no:cacheprovider")
    assert result.ret != 0
    assert expected in result.stdout.str() + result.stderr.str()


def test_the_ini_file_s_project_paths_start_at_the_rootdir(pytester, monkeypatch):
    pytester.makeini("[pytest]\ntcpcopy_pcap = traffic.pcap\ntcpcopy_baseline = dir:recorded\n"
                     "tcpcopy_image = build:service:v2\ntcpcopy_report = out.json\n")  # fmt: skip
    root = pytester.path
    sub = pytester.mkdir("sub")
    (sub / "test_paths.py").write_text(
        "from pathlib import Path\n\n"
        "def test_paths(tcpcopy):\n"
        f"    root = Path({str(root)!r})\n"
        "    assert tcpcopy.settings.pcap == (root / 'traffic.pcap',)\n"
        "    assert str(tcpcopy.settings.baseline) == f'dir:{root / \"recorded\"}'\n"
        "    assert tcpcopy.settings.image == f'build:{root / \"service\"}:v2'\n"
        "    assert tcpcopy.settings.report == (Path('out.json'),)  # an output: where pytest runs\n"
    )  # fmt: skip
    monkeypatch.chdir(sub)
    pytester.runpytest("-p", "no:cacheprovider", "test_paths.py").assert_outcomes(passed=1)
    # The command line's stay as given: relative to the working directory.
    given = pytester.runpytest("-p", "no:cacheprovider", "test_paths.py", "--tcpcopy-pcap", "mine.pcap")
    given.assert_outcomes(failed=1)
    assert "(PosixPath('mine.pcap'),) ==" in given.stdout.str()


def test_privileges_reach_the_candidate_and_the_baseline():
    current = settings(image="svc:2", port=8080, sut_cap_add=["cap_sys_ptrace", "NET_RAW"], sut_new_privileges=True,
                       baseline="image:svc:1")  # fmt: skip
    spec = candidate_spec(current)
    assert (spec.cap_add, spec.new_privileges) == (("SYS_PTRACE", "NET_RAW"), True)
    _, baseline = strategy_for(current).suts(spec)
    assert (baseline.image, baseline.cap_add, baseline.new_privileges) == ("svc:1", ("SYS_PTRACE", "NET_RAW"), True)
    assert candidate_spec(settings(image="svc:2", port=8080)) == SutSpec("candidate", 8080, image="svc:2")


def test_build_args_and_the_sanity_mode():
    assert settings(build_arg=["BASE=debian:12", "RELEASE=v2", "RELEASE=v3"]).build_args == {
        "BASE": "debian:12", "RELEASE": "v3"}  # fmt: skip
    assert Settings().sanity is Sanity.FAIL and settings(sanity="OFF").sanity is Sanity.OFF


def test_noise_with_a_baseline_that_cannot_use_it_is_said():
    for baseline in ("capture", "dir:rec", "none"):
        [note] = strategy_for(settings(baseline=baseline, noise=True)).notes()
        assert note.startswith(f"--tcpcopy-noise has no effect with the {baseline.split(':')[0]} baseline")
    assert strategy_for(settings(baseline="image:svc:1", noise=True)).notes() == []
    assert strategy_for(settings(baseline="capture")).notes() == []


def test_live_recordings_are_named_by_source_when_two_are_taken():
    one = settings(live="eth0", record_to="traffic.pcapng.gz")
    assert one.recording_for("live") == Path("traffic.pcapng.gz")
    two = settings(live="eth0", mirror_listen="127.0.0.1:36525", record_to="keep/traffic.pcapng.gz")
    assert two.recording_for("live") == Path("keep/traffic-live.pcapng.gz")
    assert two.recording_for("mirror") == Path("keep/traffic-mirror.pcapng.gz")
    assert settings(live="eth0").recording_for("live") is None


def test_a_netns_sut_whose_program_does_not_exist_fails_before_anything_starts():
    from pytest_tcpcopy.runner import TcpcopyRunner

    current = settings(backend="netns", command="no-such-server --port 8080", port=8080)
    with pytest.raises(UsageError, match="SUT candidate: 'no-such-server' is not a program found on PATH"):
        TcpcopyRunner(current).preflight()
    baseline = settings(backend="netns", command="python3 app.py", port=8080, baseline="command:./missing/app")
    with pytest.raises(UsageError, match="SUT baseline: './missing/app' is not a program found on PATH"):
        TcpcopyRunner(baseline).preflight()


def test_a_mistyped_build_path_is_one_line_before_docker_is_asked():
    from pytest_tcpcopy.runner import TcpcopyRunner

    current = settings(image="build:/no/such/folder:v2", port=8080)
    with pytest.raises(UsageError) as raised:
        TcpcopyRunner(current).preflight()
    assert str(raised.value) == ("SUT candidate: 'build:/no/such/folder:v2': /no/such/folder is neither a build "
                                 "context folder nor a Dockerfile")  # fmt: skip
