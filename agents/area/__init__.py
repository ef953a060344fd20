"""A Megatest test-suite area: its config files, and running its tests on this host.

Knows nothing of sockets: the home's dispatcher and the host agents both use it.
"""

from agents.area.config import Config as Config
from agents.area.config import ConfigError as ConfigError
from agents.area.config import read_config as read_config
from agents.area.errors import AreaError as AreaError
from agents.area.items import Item as Item
from agents.area.local import LocalRun as LocalRun
from agents.area.model import Area as Area
from agents.area.model import RunConfig as RunConfig
from agents.area.model import TargetError as TargetError
from agents.area.model import TestConfig as TestConfig
from agents.area.model import not_an_area as not_an_area
from agents.area.paths import PathError as PathError
from agents.area.plan import Instance as Instance
from agents.area.plan import Plan as Plan
from agents.area.plan import PlannedTest as PlannedTest
from agents.area.plan import plan_run as plan_run
from agents.area.progress import RunProgress as RunProgress
from agents.area.report import Reporter as Reporter
from agents.area.report import TestRef as TestRef
from agents.area.runner import Outcome as Outcome
from agents.area.runner import StepSpec as StepSpec
from agents.area.runner import TestJob as TestJob
from agents.area.runner import TestProcess as TestProcess
from agents.area.testpatt import SelectionError as SelectionError
from agents.area.testpatt import TestPatt as TestPatt

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
    # Planning and running
    "Instance",
    "LocalRun",
    "Outcome",
    "Plan",
    "PlannedTest",
    "RunProgress",
    "StepSpec",
    "TestJob",
    "TestProcess",
    "plan_run",
    # Reporting
    "Reporter",
    "TestRef",
]
