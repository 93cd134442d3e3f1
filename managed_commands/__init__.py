"""Tracked, run-once and ordered Django management commands."""

__version__ = "0.1.0"
