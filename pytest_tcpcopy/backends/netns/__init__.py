"""The ``netns`` backend: the bench rig (client and SUT namespaces on a veth pair) for a SUT run
as a local command, as root. Pure plumbing; no protocol decisions live here."""

from pytest_tcpcopy.backends.netns.plumbing import reap_leftovers, sh
from pytest_tcpcopy.backends.netns.rig import REPLAY_NET, NetnsRig, SutProcess

__all__ = ["REPLAY_NET", "NetnsRig", "SutProcess", "reap_leftovers", "sh"]
