"""The planted-secrets corpus through reproducers: no text file of a reproducer folder holds one
of the planted secrets, whatever the slice mode; the session's capture file, which does hold them,
is written only when asked for."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from reprokit import Conversation, write_capture

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "compare"))
from secretcorpus import VISIBLE, _wire, all_secrets, assert_no_secrets, leaked, planted_problem, planted_sessions

from pytest_tcpcopy.compare import DiffConfig, FindingsAccumulator, compare_sessions
from pytest_tcpcopy.reproduce import ReproducerConfig, RerunTarget, SliceMode, write_reproducers

TOKEN = all_secrets()[0]


def corpus_capture(tmp_path: Path) -> Path:
    """The corpus's baseline sessions as a capture: session 0 HTTP, session 1 text protocols."""
    conversations = []
    for session, (baseline, _) in sorted(planted_sessions().items()):
        conversation = Conversation((f"10.2.0.{session + 1}", 40000 + session), ("10.2.0.9", 8080), 100.0 + session)
        conversation.handshake()
        for exchange in baseline:
            conversation.turn(_wire(exchange.request), _wire(exchange.response))
        conversations.append(conversation.close())
    return write_capture(tmp_path / "corpus.pcap", *conversations)


def corpus_findings() -> FindingsAccumulator:
    findings = FindingsAccumulator(max_examples=10)
    for _session, (baseline, candidate) in sorted(planted_sessions().items()):
        for comparison in compare_sessions(baseline, candidate, DiffConfig(compare_cookie_values=True)):
            findings.add(comparison)
        for comparison in compare_sessions(baseline[:1], [], candidate_problems=[planted_problem()]):
            findings.add(comparison)
    return findings


def written_texts(folder: Path) -> dict[str, str]:
    """Every file of the reproducers' folder but the capture files, as text (bytes kept)."""
    return {str(p.relative_to(folder)): p.read_bytes().decode("latin-1")
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.name.endswith(".pcap")}  # fmt: skip


@pytest.mark.parametrize("mode", list(SliceMode))
def test_no_planted_secret_reaches_a_reproducers_text_files(tmp_path, mode):
    capture = corpus_capture(tmp_path)
    target = RerunTarget(
        8080, "netns", command=("./app", f"--auth-token={TOKEN}"), baseline=f"command:./v1 --pwd={TOKEN}"
    )
    config = ReproducerConfig(target, slices=mode, per_finding=20, max_reproducers=100)
    out = write_reproducers(tmp_path / "out", [(capture, corpus_findings().findings())], config)
    assert {(r.session, r.number) for r in out.reproducers} == {(0, n) for n in range(4)} | {(1, n) for n in range(6)}
    assert all(r.problem is None for r in out.reproducers)
    texts = written_texts(out.directory)
    assert len(texts) > 40
    for name, text in texts.items():
        assert_no_secrets(text, name)
    readmes = "".join(t for n, t in texts.items() if n.endswith("README.md"))
    assert all(value in readmes for value in VISIBLE)  # the diffs were rendered, secrets and all
    assert "body.user_password: value differs (redacted)" in readmes
    assert "--auth-token=[redacted]" in readmes and "--pwd=[redacted]" in readmes
    curls = "".join(t for n, t in texts.items() if n.endswith("request.sh") and "curl" in t)
    assert "TCPCOPY_AUTHORIZATION" in curls and "TCPCOPY_COOKIE" in curls and "user_password=[redacted]" in curls
    slices = sorted(out.directory.rglob("*.pcap"))
    if mode is SliceMode.ALWAYS:
        assert len(slices) == len(out.reproducers)
        assert all(leaked(p.read_bytes().decode("latin-1")) for p in slices)  # the check would see a leak
    else:
        assert slices == []
        notes = {r.slice_note for r in out.reproducers}
        assert notes == {"slices: never"} if mode is SliceMode.NEVER else len(notes) == 1
        if mode is SliceMode.AUTO:
            assert "recognises a secret" in notes.pop()


def test_a_session_without_secrets_keeps_its_slice_in_auto_mode(tmp_path):
    from reprokit import http_exchanges

    from pytest_tcpcopy.capture import open_capture
    from pytest_tcpcopy.compare import exchanges_from_capture
    from pytest_tcpcopy.flows import assemble_sessions
    from pytest_tcpcopy.reproduce import Example, write_reproducer

    plain = Conversation(("10.2.0.1", 40000), ("10.2.0.9", 8080), 100.0).handshake()
    for request, response in http_exchanges("/api/users/2"):
        plain.turn(request, response)
    capture = write_capture(tmp_path / "plain.pcap", plain.close())
    with open_capture(capture) as reader:
        [session] = list(assemble_sessions(reader))
    [exchange] = exchanges_from_capture(session)
    reproducer = write_reproducer(capture, Example(0, 0, exchange.id), tmp_path / "out",
                                  ReproducerConfig(RerunTarget(8080, image="svc:2")))  # fmt: skip
    assert reproducer.slice_file == "session.pcap" and (reproducer.directory / "session.pcap").exists()
    assert "recognises no secret" in reproducer.slice_note
