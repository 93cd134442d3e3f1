from catalog.models import Product
from managed_commands.testing.assertions import assert_ran_once, assert_skipped, assert_succeeded


def test_loads_the_catalog_once(run_managed_command):
    result = run_managed_command("load_catalog")

    assert_succeeded(result)
    assert result.stdout == "Loaded 3 products.\n"
    assert Product.objects.count() == 3
    # A second run is skipped: handle() is not called, nothing is duplicated.
    assert_skipped(run_managed_command("load_catalog"))
    assert Product.objects.count() == 3
    assert_ran_once("load_catalog")


def test_rerun_runs_it_again_deliberately(run_managed_command, command_history):
    command_history.succeeded("load_catalog")

    result = run_managed_command("load_catalog", rerun=True)

    assert assert_succeeded(result).forced
    assert Product.objects.count() == 3
