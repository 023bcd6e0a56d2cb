"""Old import paths and old names: still working, warning once, and still readable by IDEs."""

from __future__ import annotations

import inspect
import subprocess
import warnings
from pathlib import Path

import pytest

from huke_client import AsyncHukeClient, HukeClient
from huke_k3_bridge import async_sync_customers, sync_customers
from k3cloud_client import AsyncK3CloudClient, K3CloudClient


@pytest.mark.parametrize(
    "statement",
    [
        "from huke_client import body_sign",
        "from huke_client import LIST_KEYS",
        "from k3cloud_client import converter",
        "from k3cloud_client import api_error",
        "from k3cloud_client import login_sign, signed_headers",
    ],
)
def test_an_old_import_warns_once_per_name(statement: str) -> None:
    # HEAD: ``from pkg import moved`` runs the module __getattr__ twice (importlib's
    # _handle_fromlist probes hasattr(), then IMPORT_FROM reads it), so every moved name
    # raises two identical DeprecationWarnings (pytest.warns/deprecated_call and
    # catch_warnings(record=True) users see both).
    names = statement.split(" import ")[1].split(", ")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        exec(statement, {})
    deprecations = [w for w in caught if issubclass(w.category, DeprecationWarning)]
    assert len(deprecations) == len(names), [str(w.message) for w in deprecations]


# Before HEAD these parameters were in the signatures, with their defaults; IDEs, help(),
# IPython's signature hints and docs generators showed them. HEAD: ``**kwargs: Unpack[...]``.
_SHOWN = {
    HukeClient.search_trades: {
        "page_size": 100,
        "source": "2",
        "time_type": "1",
        "items_key": None,
    },
    HukeClient.iter_trades: {
        "window": None,
        "page_size": 100,
        "max_pages": 100_000,
        "max_restarts": 3,
    },
    AsyncHukeClient.iter_trade_pages: {"page_size": 100, "max_pages": 100_000},
    K3CloudClient.batch_save: {
        "is_auto_submit_and_audit": False,
        "is_delete_entry": True,
        "batch_count": None,
    },
    K3CloudClient.save: {"need_update_fields": None, "validate_flag": True},
    AsyncK3CloudClient.batch_save: {"need_return_fields": None, "number_search": True},
    K3CloudClient.execute_bill_query: {"filter_string": "", "limit": 2000, "start_row": 0},
    K3CloudClient.iter_bill_query: {"page_size": 2000, "max_pages": 10_000},
    sync_customers: {"batch_size": 400, "dry_run": False, "on_existing": "skip", "page_size": 100},
    async_sync_customers: {"concurrency": 8, "fetch_concurrency": 4, "batch_size": 400},
}


@pytest.mark.parametrize("function", list(_SHOWN), ids=lambda f: f.__qualname__)
def test_signature_still_shows_the_options_and_their_defaults(function: object) -> None:
    parameters = inspect.signature(function).parameters  # type: ignore[arg-type]
    shown = {name: parameters[name].default for name in _SHOWN[function] if name in parameters}  # type: ignore[index]
    assert shown == _SHOWN[function]  # type: ignore[index]


def test_no_run_state_is_committed() -> None:
    # A run's state written into the checkout by a docs example (FileState("huke-k3.json"))
    # was once committed: a sync run from a checkout would resume from its stale watermark.
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        pytest.skip("not a git checkout")
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=root, capture_output=True, text=True, check=True
    ).stdout.split()
    assert not [name for name in tracked if name.endswith((".json.lock", "huke-k3.json"))]
