"""``python -m huke_k3_bridge`` and the ``huke-k3`` console script."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``huke-k3`` command line; returns its exit status (0 ok, 1 failures, 2 usage)."""
    from ._cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
