"""``python -m huke_k3_bridge`` and the ``huke-k3`` console script."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

#: The exit status of a program whose reader went away (``huke-k3 doctor | head``): 128 + SIGPIPE.
EXIT_BROKEN_PIPE = 141


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``huke-k3`` command line; returns its exit status (0 ok, 1 failures, 2 usage)."""
    from ._cli import main as cli_main

    try:
        status = cli_main(argv)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader has what it wanted; Python would print a traceback at exit flushing stdout.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    return status


if __name__ == "__main__":
    sys.exit(main())
