from decimal import Decimal

from catalog.models import Product
from managed_commands.base import ManagedBaseCommand

PRICES = {"TEA-01": Decimal("4.50"), "TEA-02": Decimal("3.90"), "CUP-01": Decimal("12.00")}


class Command(ManagedBaseCommand):
    help = "Set the launch prices; needs the catalog loaded and the price column migrated."
    run_once = True
    requires = ["load_catalog", "catalog.0001_initial"]

    def handle(self, *args, **options):
        for sku, price in PRICES.items():
            Product.objects.filter(sku=sku).update(price=price)
        self.stdout.write(f"Priced {len(PRICES)} products.")
