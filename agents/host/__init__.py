"""A host of the farm: the agent that pulls tests from the home and runs them here.

* :mod:`~mtpkt.agents.host.agent` is the long-lived agent: it wires the parts
  below and runs their life (start, drain, stop);
* :mod:`~mtpkt.agents.host.pulls` pulls tasks from the home and takes each once,
  recording its id with :mod:`~mtpkt.agents.host.seen` first;
* :mod:`~mtpkt.agents.host.slots` holds the tests taken, waiting for a slot or
  running in one, and :mod:`~mtpkt.agents.host.plans` plans each test once per launch;
* :mod:`~mtpkt.agents.host.runner` runs one test instance, each step in its own
  process group, and :mod:`~mtpkt.agents.host.guard` kills what its steps leave
  should the runner die;
* :mod:`~mtpkt.agents.host.report` turns what happens into status packets.
"""

from mtpkt.agents.host.agent import HostAgent as HostAgent
from mtpkt.agents.host.report import Reporter as Reporter
from mtpkt.agents.host.runner import Outcome as Outcome
from mtpkt.agents.host.runner import TestProcess as TestProcess

__all__ = ["HostAgent", "Outcome", "Reporter", "TestProcess"]
