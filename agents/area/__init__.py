"""A Megatest test-suite area: its config files, and planning a run of its tests.

Knows nothing of sockets, processes or databases: the home's dispatcher plans
runs with it, and the host agents plan the instances they are given; running
them is :mod:`mtpkt.agents.host`'s.
"""

from mtpkt.agents.area.config import Config as Config
from mtpkt.agents.area.config import ConfigError as ConfigError
from mtpkt.agents.area.config import read_config as read_config
from mtpkt.agents.area.errors import AreaError as AreaError
from mtpkt.agents.area.items import Item as Item
from mtpkt.agents.area.job import StepSpec as StepSpec
from mtpkt.agents.area.job import TestJob as TestJob
from mtpkt.agents.area.job import TestRef as TestRef
from mtpkt.agents.area.model import Area as Area
from mtpkt.agents.area.model import RunConfig as RunConfig
from mtpkt.agents.area.model import TargetError as TargetError
from mtpkt.agents.area.model import TestConfig as TestConfig
from mtpkt.agents.area.model import not_an_area as not_an_area
from mtpkt.agents.area.paths import PathError as PathError
from mtpkt.agents.area.plan import Instance as Instance
from mtpkt.agents.area.plan import Plan as Plan
from mtpkt.agents.area.plan import PlannedTest as PlannedTest
from mtpkt.agents.area.plan import plan_run as plan_run
from mtpkt.agents.area.progress import RunProgress as RunProgress
from mtpkt.agents.area.testpatt import SelectionError as SelectionError
from mtpkt.agents.area.testpatt import TestPatt as TestPatt

__all__ = [
    # Errors (all AreaError: one clear line)
    "AreaError",
    "ConfigError",
    "PathError",
    "SelectionError",
    "TargetError",
    # Reading an area
    "Area",
    "Config",
    "Item",
    "RunConfig",
    "TestConfig",
    "not_an_area",
    "TestPatt",
    "read_config",
    # Planning
    "Instance",
    "Plan",
    "PlannedTest",
    "RunProgress",
    "StepSpec",
    "TestJob",
    "TestRef",
    "plan_run",
]
