"""``python -m mtpkt.tools`` runs the ``mtpkt`` command."""

from mtpkt.tools.cli import main

raise SystemExit(main())
