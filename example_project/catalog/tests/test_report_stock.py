from decimal import Decimal

from catalog.models import Product
from managed_commands.testing.assertions import assert_history, assert_succeeded


def test_every_run_is_recorded(run_managed_command):
    Product.objects.create(sku="TEA-01", name="Green tea", price=Decimal("4.50"))
    Product.objects.create(sku="CUP-01", name="Cup")

    first = run_managed_command("report_stock")
    second = run_managed_command("report_stock", unpriced=True)

    assert assert_succeeded(first).output == (
        "CUP-01   Cup                  -\nTEA-01   Green tea            4.50\n2 products\n"
    )
    assert assert_succeeded(second).parameters == {"args": [], "options": {"unpriced": True}}
    assert second.stdout == "CUP-01   Cup                  -\n1 products\n"
    assert_history("report_stock", ["succeeded", "succeeded"])
