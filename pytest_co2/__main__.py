"""``python -m pytest_co2``: the command line (see :mod:`pytest_co2.cli`)."""

from __future__ import annotations

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
