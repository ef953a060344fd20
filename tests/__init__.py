"""mtpkt's test suite."""
