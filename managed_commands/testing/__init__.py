"""Helpers for testing managed commands (needs the ``managed_commands[testing]`` extra)."""
