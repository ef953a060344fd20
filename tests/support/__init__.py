"""What the suites share: a farm of real processes, the mtpkt command line (cli), polling and
/proc (procs), read-only database reads (dbs), certificates, strategies, fault books, and a
run of a whole plan on this host with no home (local)."""
