"""The inside of one tracked run: its claim and lease, output capture, signal
handling, stored arguments, and how database errors met while recording read.

Internal: ``managed_commands.base.ManagedBaseCommand`` is the public way in.
"""
