"""The collector's thresholds while a replay is judged, and after."""

from __future__ import annotations

import gc

import pytest

from pytest_tcpcopy.judging.collector import fewer_collections


def test_young_collections_are_rarer_inside_and_as_before_after():
    before = gc.get_threshold()
    with fewer_collections(123_456):
        assert gc.get_threshold() == (123_456, *before[1:])
    assert gc.get_threshold() == before


def test_the_thresholds_come_back_when_the_judging_fails():
    before = gc.get_threshold()
    with pytest.raises(RuntimeError), fewer_collections(99_999):
        raise RuntimeError("the replay failed")
    assert gc.get_threshold() == before
