"""Commands with timeouts (installed through MC_TEST_EXTRA_APPS, as SQLite warns about them)."""
