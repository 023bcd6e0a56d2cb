"""The version is written once (``_huke_k3_core/_version.py``) and is what the distribution says."""

from importlib import metadata

from _huke_k3_core import USER_AGENT
from _huke_k3_core._version import __version__


def test_the_installed_distribution_has_the_version_written_in_the_source() -> None:
    assert metadata.version("huke-k3-bridge") == __version__


def test_the_user_agent_names_the_version() -> None:
    assert USER_AGENT.startswith(f"huke-k3-bridge/{__version__} httpx/")
