"""``mypy --strict`` on code written the way the docs show (issue 10 item 1 typed the options)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

USER_CODE = textwrap.dedent(
    """
    from __future__ import annotations

    from typing import Any

    from huke_client import HukeClient
    from k3cloud_client import Customer, K3CloudClient


    def run(huke: HukeClient, k3: K3CloudClient, opts: dict[str, Any]) -> None:
        # docs/migrating.md: "anything else via **extra, e.g. is_entry_batch_fill=False";
        # docs/k3cloud.md: "Other options pass through too, spelled in snake_case".
        k3.batch_save("BD_Customer", [Customer("C1", "n")], is_entry_batch_fill=False)  # LINE-A
        k3.save("BD_Customer", Customer("C1", "n"), is_entry_batch_fill=False)  # LINE-B
        # docs/huke.md: "extra=... adds top-level wire fields; so does any other keyword".
        huke.search_trades(start=0, end=1, shopId="S9")  # LINE-C
        for _ in huke.iter_trades(start=0, end=1, shopId="S9"):  # LINE-D
            pass
        huke.search_trades(start=0, end=1, extra={"shopId": "S9"})  # LINE-E
        for _ in huke.iter_trades(start=0, end=1, extra={"shopId": "S9"}):  # LINE-F
            pass
        k3.batch_save("BD_Customer", [], validate_flags=False)  # LINE-G
        k3.batch_save("BD_Customer", [], **opts)
        huke.search_trades(start=0, end=1, **opts)
    """
)


@pytest.fixture(scope="module")
def mypy_errors(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    work = tmp_path_factory.mktemp("typing")
    module = work / "user_module.py"
    module.write_text(USER_CODE, encoding="utf-8")
    env = dict(os.environ)
    # Checking an unpacked tree (PYTHONPATH=...): let mypy read the same sources.
    if env.get("PYTHONPATH"):
        env["MYPYPATH"] = env["PYTHONPATH"]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--cache-dir",
            str(work / ".mypy_cache"),
            "--follow-imports=silent",
            str(module),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=work,
    )
    lines = USER_CODE.splitlines()
    errors = []
    for line in done.stdout.splitlines():
        if line.startswith((str(module), module.name)) and ": error:" in line:
            number = int(line.split(":")[1])
            errors.append(f"{lines[number - 1].strip()}  ->  {line.split(': error: ')[1]}")
    assert errors or done.returncode == 0, done.stdout + done.stderr
    return errors


@pytest.mark.parametrize("marker", ["LINE-A", "LINE-B", "LINE-E", "LINE-F"])
def test_documented_keywords_type_check(mypy_errors: list[str], marker: str) -> None:
    # The K/3 options docs/migrating.md names are declared options; an undeclared Huke wire
    # field written as ``extra={...}`` (what docs/huke.md says) type-checks.
    assert [e for e in mypy_errors if marker in e] == []


@pytest.mark.parametrize("marker", ["LINE-C", "LINE-D", "LINE-G"])
def test_an_undeclared_or_misspelt_keyword_is_a_type_error(
    mypy_errors: list[str], marker: str
) -> None:
    # Deliberate (CHANGELOG.md): at run time such a keyword still goes to ``extra``, but a type
    # checker flags it, which is how a typo such as ``validate_flags=`` is caught before it is
    # sent as an option the server ignores.
    assert [e for e in mypy_errors if marker in e] != []
