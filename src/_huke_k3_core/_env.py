"""Reading settings from the environment with errors that name what is missing."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence


def read_env(
    *,
    required: Sequence[str],
    optional: Sequence[str] = (),
    error: type[Exception],
    environ: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The non-empty values of the named variables; ``error`` names every missing required one."""
    env = os.environ if environ is None else environ
    missing = [name for name in required if not env.get(name, "").strip()]
    if missing:
        raise error(f"missing setting(s) {', '.join(missing)}: set them in the environment")
    return {name: env[name].strip() for name in (*required, *optional) if env.get(name, "").strip()}
