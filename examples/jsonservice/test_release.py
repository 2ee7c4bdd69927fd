"""v2 against v1, on the traffic production sent to v1: exactly the one regression shows."""

REGRESSED = {"GET /api/users/2", "GET /api/users/5", "GET /api/users/7"}  # the premium users


def test_v2_regresses_exactly_the_premium_plan(tcpcopy):
    run = tcpcopy.replay()
    assert run.candidate.totals()["completed"] == 30, run.candidate.totals()
    assert run.aborted == []
    differing = {c.id.split("-", 1)[1] for c in run.differences}
    assert differing == REGRESSED
    for comparison in run.differences:
        # Only the plan field: the new X-Service-Version header is additive, not a regression.
        assert [change.where for change in comparison.diff.changes] == ["body.plan"], comparison.render()
        assert comparison.diff.changes[0].old == "premium" and comparison.diff.changes[0].new == "free"
