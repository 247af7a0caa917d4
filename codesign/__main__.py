"""``python -m codesign`` is the ``codesign`` command."""

from codesign.cli import main

raise SystemExit(main())
