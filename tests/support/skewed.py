"""Run ``mtpkt`` with its wall clock off by some seconds: ``skewed.py SECONDS ARGS…``.

Only the wall clock moves (``time.time`` and ``time.time_ns``), as on a host
whose clock is set wrong; the monotonic clock, which timeouts use, does not.
The clock is set before mtpkt is imported, so that what keeps a reference to
``time.time`` (attrs factories of packet timestamps) gets the skewed one.
"""

import importlib
import sys
import time

skew = float(sys.argv[1])
_time, _time_ns = time.time, time.time_ns
time.time = lambda: _time() + skew
time.time_ns = lambda: _time_ns() + int(skew * 1e9)
raise SystemExit(importlib.import_module("mtpkt.tools.cli").main(sys.argv[2:]))
