"""The collector's thresholds while a replay is judged, and after."""

from __future__ import annotations

import gc
import weakref

import pytest

from pytest_tcpcopy.judging.collector import FrozenTree, fewer_collections


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


def test_a_frozen_tree_is_out_of_full_collections_until_thawed():
    class Node:  # a collected item keeps a reference cycle through its parent, as pytest's do
        pass

    tree = FrozenTree()
    node = Node()
    node.self = node
    alive = weakref.ref(node)
    tree.freeze()
    try:
        del node
        gc.collect()
        assert alive() is not None  # frozen: the full collection did not walk it
    finally:
        tree.thaw()
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert alive() is None  # thawed: the next full collection frees the garbage cycle
    tree.thaw()  # a second thaw changes nothing


def test_thawing_what_it_never_froze_leaves_others_frozen():
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        FrozenTree().thaw()
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()
