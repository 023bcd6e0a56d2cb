"""``huke-k3``: ``-v`` before and after the sub-command (the counts add up), ``--version``."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest

from _huke_k3_core._version import __version__
from huke_k3_bridge import __main__
from huke_k3_bridge._cli import build_parser, main


@pytest.mark.parametrize(
    ("argv", "verbose"),
    [
        (["sync"], 0),
        (["-v", "sync"], 1),
        (["sync", "-v"], 1),
        (["sync", "--verbose", "--dry-run"], 1),
        (["sync", "-vv"], 2),
        (["-v", "sync", "-v"], 2),
        (["-vv", "sync", "-v"], 3),
        (["demo", "-vv"], 2),
        (["demo", "--trades", "5", "-v"], 1),
        (["dispatch", "-v"], 1),
        (["-v", "dispatch", "-v", "--tenant", "a"], 2),
        (["doctor", "-v"], 1),
        (["-v", "doctor", "-vv", "--json"], 3),
    ],
)
def test_verbosity_counts_before_and_after_the_command(argv: list[str], verbose: int) -> None:
    args = build_parser().parse_args(argv)
    assert args.verbose == verbose
    assert not hasattr(args, "verbose_after_command")


def test_every_command_takes_v_and_says_so_in_its_help() -> None:
    for command in ("sync", "demo", "dispatch"):
        out = io.StringIO()
        assert main([command, "--help"], stdout=out) == 0
        assert "-v, --verbose" in out.getvalue(), command


@pytest.mark.parametrize(
    ("before", "after", "info", "debug"),
    [
        ([], [], False, False),
        ([], ["-v"], True, False),
        (["-v"], [], True, False),
        (["-v"], ["-v"], True, True),
        ([], ["-vv"], True, True),
    ],
)
def test_the_log_level_follows_the_total_count(
    before: list[str], after: list[str], info: bool, debug: bool
) -> None:
    out, err = io.StringIO(), io.StringIO()
    demo = ["demo", "--trades", "4", "--buyers", "2", "--no-progress"]
    assert main([*before, *demo, *after], stdout=out, stderr=err) == 0
    log = err.getvalue()
    assert ("INFO huke_k3_bridge: sync done in " in log) is info, log
    assert ("DEBUG huke_k3_bridge: command took" in log) is debug, log


def test_version_prints_the_one_version_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    out = io.StringIO()
    assert main(["--version"], stdout=out) == 0
    assert out.getvalue() == f"huke-k3 {__version__}\n"
    assert __main__.main(["--version"]) == 0  # the console script's entry point
    assert capsys.readouterr().out == f"huke-k3 {__version__}\n"


def test_version_from_the_command_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "huke_k3_bridge", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, f"huke-k3 {__version__}\n", "")


def test_usage_errors_go_to_the_given_stream() -> None:
    out, err = io.StringIO(), io.StringIO()
    assert main(["sync", "--batch-size", "0"], stdout=out, stderr=err) == 2
    assert "usage: huke-k3 sync" in err.getvalue()
    assert out.getvalue() == ""


def test_a_reader_that_goes_away_ends_the_command_quietly(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``huke-k3 doctor | head``: no traceback when the pipe closes, and 128 + SIGPIPE."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    with capsys.disabled(), os.fdopen(write_end, "w") as closed_pipe:
        monkeypatch.setattr(sys, "stdout", closed_pipe)
        assert __main__.main(["--version"]) == __main__.EXIT_BROKEN_PIPE
