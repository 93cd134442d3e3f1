"""Commands with phases and tags, and a migration that requires one of them.

Installed only through ``MC_TEST_EXTRA_APPS=tests.phasesapp``: its commands
would change the listings other tests pin, and its migration stops ``migrate``
until ``backfill_slugs`` has run.
"""
