from decimal import Decimal

from catalog.models import Product
from managed_commands import ManagedBaseCommand

PRICES = {"TEA-01": Decimal("4.50"), "TEA-02": Decimal("3.90"), "CUP-01": Decimal("12.00")}


class Command(ManagedBaseCommand):
    help = "Set the launch prices; needs the catalog loaded and the price column migrated."
    run_once = True
    requires = ["load_catalog", "catalog.0001_initial"]

    def handle(self, *args, **options):
        # In batches that commit with the run's cursor: killed midway, the next
        # start resumes after the last batch that committed.
        priced = 0
        for batch in self.iterate_batches(Product.objects.all(), batch_size=100):
            for product in batch:
                product.price = PRICES.get(product.sku, product.price)
            Product.objects.bulk_update(batch, ["price"])
            priced += len(batch)
        self.stdout.write(f"Priced {priced} products.")
