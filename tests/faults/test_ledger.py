"""The fault suite's books count what they should (a run with no fault at all)."""

import pytest

from tests.support.farm import TARGET, Farm
from tests.support.ledger import books


@pytest.mark.timeout(60)
def test_books_of_a_run_with_no_fault(farm: Farm) -> None:
    farm.start_home()
    farm.start_agent("alpha")
    sent = farm.send("run", "-t", TARGET, "-r", "calm", "--testpatt", "build,unit", "--wait")
    assert sent.returncode == 0, sent
    farm.stop_all()
    counted = books("no fault", farm.area, ["alpha"])
    assert counted.sent > 0
    assert (counted.lost, counted.doubled, counted.pending) == (0, 0, 0)
    assert counted.committed == counted.sent
