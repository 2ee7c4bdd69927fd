"""The host <-> copier contract: argv both ways, the progress line, the result stream."""

from __future__ import annotations

import argparse
import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_tcpcopy.cli import build_parser
from pytest_tcpcopy.commands.replay import print_result
from pytest_tcpcopy.errors import EnvironmentProblem, UsageError
from pytest_tcpcopy.replay.contract import (
    CopierCommand,
    CopierSettings,
    Output,
    Progress,
    ResultDecoder,
    decode_result,
    format_session_list,
    is_ready_line,
    parse_session_list,
    parse_speed,
    result_lines,
)
from pytest_tcpcopy.replay.results import ExchangeTiming, Outcome, ReplayResult, SessionResult

settings_strategy = st.builds(
    CopierSettings,
    speed=st.one_of(st.none(), st.floats(min_value=0.001, max_value=1000, allow_nan=False)),
    amplify=st.integers(1, 50),
    max_sessions=st.integers(1, 100_000),
    pipeline=st.booleans(),
    capture_responses=st.booleans(),
    max_duration=st.floats(min_value=0.5, max_value=1e5, allow_nan=False),
    sessions=st.one_of(st.none(), st.frozensets(st.integers(0, 5000), min_size=1, max_size=40)),
    server_ports=st.lists(st.integers(1, 65535), max_size=3).map(tuple),
)


def copier_parser() -> argparse.ArgumentParser:
    """The parser the copier itself uses (``pytest-tcpcopy replay``)."""
    return build_parser()


@given(settings_strategy)
def test_copier_settings_survive_the_copier_command_line(settings):
    command = CopierCommand("10.0.0.2:8080", ("10.0.0.2:36524",), settings, capture="/tmp/x.pcap")
    args = copier_parser().parse_args(["replay", *command.to_argv()])
    assert CopierCommand.from_namespace(args) == command


@given(settings_strategy)
def test_the_rig_commands_take_the_same_settings_with_capture_port(settings):
    parser = argparse.ArgumentParser()
    CopierSettings.add_arguments(parser, ports_flag="--capture-port")
    argv = [("--capture-port" if a == "--port" else a) for a in settings.to_argv()]
    assert CopierSettings.from_namespace(parser.parse_args(argv)) == settings


@pytest.mark.parametrize(
    "command",
    [
        CopierCommand("10.0.0.2:80", ("10.0.0.2:36524",), CopierSettings(server_ports=(80,)), live="eth0", duration=5),
        CopierCommand("10.0.0.2:80", ("a:1", "b:2"), mirror_listen="10.0.0.1:36525", output=Output.JSON, progress=True),
        CopierCommand("10.0.0.2:80", ("10.0.0.2:36524",), stdin_stream=True, output=Output.TEXT),
    ],
)
def test_live_sources_and_outputs_survive_the_command_line(command):
    assert CopierCommand.from_namespace(copier_parser().parse_args(["replay", *command.to_argv()])) == command


def test_defaults_are_left_out_of_the_command_line():
    assert CopierSettings().to_argv() == []
    assert CopierSettings(speed=2.0, sessions=frozenset({0, 1, 2, 7})).to_argv() == ["--speed", "2.0",
                                                                                     "--sessions", "0-2,7"]  # fmt: skip


def test_a_bad_combination_is_a_usage_error_naming_the_fix():
    args = copier_parser().parse_args(["replay", "x.pcap", "--duration", "5", "--target", "1.2.3.4:5",
                                       "--intercept", "1.2.3.4"])  # fmt: skip
    with pytest.raises(UsageError, match="--duration applies to live traffic"):
        CopierCommand.from_namespace(args)


def test_value_parsers():
    assert parse_speed("max") is None and parse_speed("0.5") == 0.5
    with pytest.raises(ValueError, match="expected 'max' or a positive factor"):
        parse_speed("fast")
    assert parse_session_list("0,4,10-12") == {0, 4, 10, 11, 12}
    assert format_session_list({12, 10, 11, 4, 0}) == "0,4,10-12"
    with pytest.raises(ValueError):
        parse_session_list("a-b")


def test_progress_line_round_trip():
    report = Progress(sessions_done=3, sessions_total=None, active=2, waiting=1, requests=9, rate=1.5, errors=0)
    assert report.to_line().startswith('{"event": "progress", ')
    assert Progress.from_line(report.to_line()) == report
    assert Progress.from_line("WARNING: something") is None
    assert Progress.from_line('{"event": "ready"}') is None


def test_ready_line():
    assert is_ready_line('{"event": "ready", "listen": "0.0.0.0:36524"}\n')
    assert not is_ready_line('{"event": "stopped"}') and not is_ready_line("ready") and not is_ready_line('{"event":')


def result() -> ReplayResult:
    first = SessionResult(0, 0, "10.0.0.1:40000", "198.18.0.1:40000", "10.0.0.2:80", Outcome.COMPLETE, "closed",
                          request_bytes=10, requests_sent=1, response_bytes=5, started_at=0.001,
                          exchanges=[ExchangeTiming(0, 10, 0.01, 0.02, 0.03, 5, scheduled_at=0.005)],
                          response_chunks={0: b"he", 2: b"llo"})  # fmt: skip
    cut = SessionResult(1, 0, "10.0.0.1:40001", "198.18.0.1:40001", "10.0.0.2:80", Outcome.SUT_RESET, "reset",
                        response_bytes=9, response_chunks={0: b"abc", 6: b"xyz"})  # fmt: skip
    silent = SessionResult(1, 1, "10.0.0.1:40001", "198.18.0.2:40001", "10.0.0.2:80", Outcome.NOT_ESTABLISHED)
    return ReplayResult([silent, first, cut], 1.25, ["a note"], delayed_starts=2, cpu=(0.5, 0.25))


def test_the_result_stream_decodes_to_the_same_result():
    original = result()
    lines = list(result_lines(original))
    assert [line.split(",")[0] for line in lines] == ['{"event": "session"'] * 3 + ['{"event": "totals"']
    decoded = decode_result("\n".join(lines))
    assert decoded.totals() == original.totals() and decoded.notes == ["a note"]
    assert [(s.session, s.copy) for s in decoded.sessions] == [(0, 0), (1, 0), (1, 1)]
    first, cut, silent = decoded.sessions
    assert first.response_data() == b"hello" and first.exchanges == original.sessions[1].exchanges
    assert first.outcome is Outcome.COMPLETE and first.captured_client == "10.0.0.1:40000"
    with pytest.raises(ValueError, match="response gap of 3 bytes at offset 3"):
        cut.response_data()
    assert silent.response_chunks == {} and silent.outcome is Outcome.NOT_ESTABLISHED
    assert decoded.to_json() == original.to_json()


def test_the_one_document_form_decodes_too():
    original = result()
    assert ReplayResult.from_json(original.to_json()).to_json() == original.to_json()


def test_the_decoder_hands_each_session_on_as_it_arrives():
    seen = []
    decoder = ResultDecoder(on_session=lambda s: seen.append(s.session))
    lines = list(result_lines(result()))
    assert decoder.feed(lines[0]).session == 0 and seen == [0]
    decoder.feed(lines[1])
    assert seen == [0, 1]
    for line in lines[2:]:
        decoder.feed(line)
    assert len(decoder.finish().sessions) == 3


def test_a_stream_cut_short_or_garbled_is_an_environment_problem():
    lines = list(result_lines(result()))
    with pytest.raises(EnvironmentProblem, match=r"ended its result stream without a totals line \(2 sessions"):
        decode_result("\n".join(lines[:2]), "the copier for SUT 'candidate'")
    with pytest.raises(EnvironmentProblem, match="result line 2 is not a result event: 'Traceback"):
        decode_result("\n".join([lines[0], "Traceback (most recent call last):"]))
    with pytest.raises(EnvironmentProblem, match="result line 1 does not decode"):
        decode_result('{"event": "session", "outcome": "exploded"}')


@pytest.mark.parametrize("output", list(Output))
def test_the_copier_prints_each_output(output):
    out = io.StringIO()
    print_result(result(), output, out)
    text = out.getvalue()
    if output is Output.JSON_LINES:
        assert decode_result(text).totals() == result().totals()
    elif output is Output.JSON:
        assert text.startswith('{"sessions": [') and text.count("\n") == 1
    else:
        assert text.startswith("sessions 3  established 0  completed 1") and "note: a note" in text


def test_a_decoder_that_keeps_no_sessions_hands_them_on_and_reports_the_copiers_totals():
    seen = []
    decoder = ResultDecoder(on_session=seen.append, keep_sessions=False)
    decoded = decoder.feed_all(result_lines(result()))
    assert len(seen) == 3 and decoder.sessions_seen == 3
    assert decoded.sessions == [] and decoded.totals() == result().totals()


def test_the_copier_writes_each_session_as_it_ends_and_totals_them_all():
    from pytest_tcpcopy.commands.replay import session_writer
    from pytest_tcpcopy.replay.results import SessionCounts

    whole = result()
    out = io.StringIO()
    counts = SessionCounts()
    write = session_writer(counts, Output.JSON_LINES, out)
    first, *rest = whole.sessions
    write(first)  # handed out as it ended: written at once, and no longer held
    assert out.getvalue().count("\n") == 1 and '"event": "session"' in out.getvalue()
    remaining = ReplayResult(rest, whole.elapsed, whole.notes, whole.delayed_starts, whole.cpu, reported=counts)
    print_result(remaining, Output.JSON_LINES, out)
    decoded = decode_result(out.getvalue())
    assert len(decoded.sessions) == 3 and decoded.totals() == whole.totals()
