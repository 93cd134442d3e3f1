from decimal import Decimal

from catalog.models import Product
from managed_commands.testing.assertions import assert_refused, assert_skipped, assert_succeeded


def test_refused_until_the_catalog_is_loaded(run_managed_command):
    result = run_managed_command("import_prices")

    assert_refused(result, missing=["load_catalog"])
    assert result.stderr == (
        "RequirementNotMet: Cannot run 'import_prices': it requires 'load_catalog', which has "
        "not run successfully yet. Run it first (python manage.py run_pending_commands runs "
        "everything pending in order).\n"
    )


def test_prices_the_loaded_catalog(run_managed_command):
    assert_succeeded(run_managed_command("load_catalog"))

    result = run_managed_command("import_prices")

    assert_succeeded(result)
    assert result.stdout == "Priced 3 products.\n"
    assert Product.objects.get(sku="TEA-01").price == Decimal("4.50")
    assert_skipped(run_managed_command("import_prices"))


def test_a_failed_requirement_does_not_count(run_managed_command, command_history):
    command_history.failed("load_catalog")

    assert_refused(run_managed_command("import_prices"), missing=["load_catalog"])


def test_a_faked_requirement_counts(run_managed_command, command_history):
    # Marked done without running (as on a database loaded from a dump): no products here.
    command_history.faked("load_catalog")

    result = run_managed_command("import_prices")

    assert_succeeded(result)
    assert not Product.objects.exists()
