"""The distribution's version: the one place it is written (hatchling reads it from here)."""

__version__ = "0.1.0"
