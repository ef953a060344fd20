"""logpro: judging a step's log by a Megatest ``.logpro`` rule file.

:mod:`.rules` reads a rule file (Scheme, through :mod:`mtpkt.agents.area.scheme`)
into the rules it declares; :mod:`.engine` runs them over a log and gives logpro's
exit code (:class:`~.rules.Code`: 0 PASS, 1 FAIL, 2 WARN, 3 CHECK, 4 WAIVED,
5 ABORT, 6 SKIP, as launch.scm:198-206 reads them); :mod:`.report` writes the
``.dat`` values and ``.html`` report of a judged log. docs/logpro.md describes the
rule language and each decision taken where Megatest's files leave it open.
"""

from mtpkt.agents.area.logpro.engine import Result as Result
from mtpkt.agents.area.logpro.engine import judge as judge
from mtpkt.agents.area.logpro.rules import Code as Code
from mtpkt.agents.area.logpro.rules import Rules as Rules
from mtpkt.agents.area.logpro.rules import load_rules as load_rules
from mtpkt.agents.area.logpro.rules import read_rules as read_rules

__all__ = ["Code", "Result", "Rules", "judge", "load_rules", "read_rules"]
