"""The long-lived roles, one room each, and what both sides share.

* :mod:`~mtpkt.agents.home`: the home of an area (collector, dispatcher, chores);
* :mod:`~mtpkt.agents.host`: the agent on each host, and running tests there;
* :mod:`~mtpkt.agents.area`: Megatest's area format and planning a run (no
  sockets, no processes);
* shared by both sides: :mod:`~mtpkt.agents.homedir` (the area's ``.mtpkt/``
  directory) and :mod:`~mtpkt.agents.rundirs` (run directories on disk).
"""

__all__: list[str] = []
