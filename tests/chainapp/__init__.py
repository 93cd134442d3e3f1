"""Run_once commands for the task worker tests: a chain, chain_1 .. chain_5, each
requiring the one before, and fails_always beside it (installed through
``MC_TEST_EXTRA_APPS``)."""
