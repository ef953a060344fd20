"""The home of an area: one long-lived process that collects, dispatches and keeps the books.

* :mod:`~mtpkt.agents.home.home` wires it together: one request endpoint for
  everyone, one live stream, ``.mtpkt/home.json``;
* :mod:`~mtpkt.agents.home.collector` takes requests: status packets are
  committed by its :mod:`~mtpkt.agents.home.writer` thread, then acknowledged
  and published;
* :mod:`~mtpkt.agents.home.dispatcher` turns control packets into work that
  host agents pull, through :mod:`~mtpkt.agents.home.intake` (control packets),
  :mod:`~mtpkt.agents.home.launches` (runs planned and followed),
  :mod:`~mtpkt.agents.home.assign` (tasks for pulling agents),
  :mod:`~mtpkt.agents.home.liveness` (agents lost too long) and
  :mod:`~mtpkt.agents.home.books` (what they all keep); the home's own status
  packets are numbered in :mod:`~mtpkt.agents.home.own`;
* :mod:`~mtpkt.agents.home.chores` cleans and archives run directories;
* :mod:`~mtpkt.agents.home.peers` and :mod:`~mtpkt.agents.home.awake` decide
  what to believe of agents: their values, and their silence.
"""

from mtpkt.agents.home.home import DEFAULT_LISTEN as DEFAULT_LISTEN
from mtpkt.agents.home.home import Home as Home

__all__ = ["DEFAULT_LISTEN", "Home"]
