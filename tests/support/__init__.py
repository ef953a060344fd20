"""What the suites share: a farm of real processes, polling, /proc, certificates, strategies."""
