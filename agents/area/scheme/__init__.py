"""A small, safe Scheme: for ``#{scheme …}`` in Megatest configs (and rule files).

Three parts, each a module: :mod:`.reader` turns text into data with the
line and column of every node; :mod:`.evaluator` runs that data with the
special forms, an environment chain and limits on steps and depth;
:mod:`.builtins` is the registry of what code may call, the only door to the
outside (the values they handle are :mod:`.values`'). :mod:`.context` adds
Megatest's names for configs (``args:get-arg``, ``getenv``, ``*toppath*`` …)
and writes a value as config text the way Megatest does. Every error is a
:class:`SchemeError`, one line naming the file, line and form.
"""

from mtpkt.agents.area.scheme.builtins import CORE as CORE
from mtpkt.agents.area.scheme.context import RunArgs as RunArgs
from mtpkt.agents.area.scheme.context import SchemeContext as SchemeContext
from mtpkt.agents.area.scheme.context import evaluate_config as evaluate_config
from mtpkt.agents.area.scheme.evaluator import Limits as Limits
from mtpkt.agents.area.scheme.evaluator import evaluate as evaluate
from mtpkt.agents.area.scheme.reader import SchemeError as SchemeError
from mtpkt.agents.area.scheme.reader import Source as Source
from mtpkt.agents.area.scheme.reader import read as read
from mtpkt.agents.area.scheme.values import Value as Value
from mtpkt.agents.area.scheme.values import to_text as to_text

__all__ = [
    # The one error
    "SchemeError",
    # Reading and evaluating
    "CORE",
    "Limits",
    "Source",
    "Value",
    "evaluate",
    "read",
    "to_text",
    # Configs
    "RunArgs",
    "SchemeContext",
    "evaluate_config",
]
