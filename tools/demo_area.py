"""The example area of ``mtpkt demo``: a small test suite in Megatest's format, whose run
ends the same way every time (:data:`EXPECTED`)."""

import textwrap
from pathlib import Path
from typing import Final

__all__ = ["AREA_FILES", "EXPECTED", "RUNNAME", "TARGET", "write_area"]

TARGET: Final = "demo/x86_64"
"""The demo run's target."""
RUNNAME: Final = "first"
"""The demo run's name."""

AREA_FILES: Final = {
    "megatest.config": """
        [fields]
        SYSTEM TEXT
        ARCH TEXT

        [setup]
        linktree #{getenv MT_RUN_AREA_HOME}/links
        max_concurrent_jobs 4
    """,
    "runconfigs.config": """
        [default]
        GREETING hello from the demo
    """,
    "tests/setup/testconfig": """
        [ezsteps]
        prepare echo "$GREETING"; sleep 1
    """,
    "tests/compile/testconfig": """
        [ezsteps]
        compile echo compiling; sleep 1.5
        link    echo linking; sleep 0.5

        [requirements]
        waiton setup
        priority 5
    """,
    "tests/unit/check.sh": """
        # Copied into each item's run directory with the testconfig, like every file here.
        echo "checking $SUITE"
        sleep "0.$((RANDOM % 9 + 1))"
        if [ "$SUITE" = parser ]; then
            echo "parser: 2 of 40 cases failed"
            exit 1
        fi
    """,
    "tests/unit/testconfig": """
        [ezsteps]
        check bash check.sh

        [requirements]
        waiton compile

        [items]
        SUITE lexer parser codegen runtime stdlib cli
    """,
    "tests/lint/testconfig": """
        [ezsteps]
        lint echo "style: 3 warnings"; sleep 1
    """,
    "tests/integration/testconfig": """
        [ezsteps]
        start  echo starting the service; sleep 1
        verify echo all requests answered; sleep 1

        [requirements]
        waiton compile
    """,
    "tests/package/testconfig": """
        [ezsteps]
        pack echo packing

        [requirements]
        waiton unit integration
    """,
}
"""The example area: 11 test instances, one item failing, one test not run because of it."""

EXPECTED: Final = "11 tests: 9 PASS, 1 FAIL, 1 NOT_STARTED/PREQ_FAIL"
"""How the demo's run ends (`mtpkt tail --until-done`'s summary)."""


def write_area(area: Path) -> None:
    """Write the example area's config files into ``area`` (new or empty)."""
    for name, text in AREA_FILES.items():
        path = area / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
