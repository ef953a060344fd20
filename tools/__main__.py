"""``python -m tools`` runs the ``mtpkt`` command."""

from tools.cli import main

raise SystemExit(main())
