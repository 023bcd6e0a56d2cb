"""The signing functions' former private home, kept for code that imports it: use
``k3cloud_client.signing``."""

from .signing import *  # noqa: F403
