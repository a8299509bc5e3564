"""``python -m workhorse``: the ``workhorse`` command."""

from workhorse._cli import main

raise SystemExit(main())
