from catalog.models import Product
from managed_commands import ManagedBaseCommand


class Command(ManagedBaseCommand):
    help = "Print the catalog (repeatable: every run is tracked, none is skipped)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--unpriced", action="store_true", help="Only products without a price."
        )

    def handle(self, *args, unpriced, **options):
        products = Product.objects.order_by("sku")
        if unpriced:
            products = products.filter(price__isnull=True)
        for product in products:
            self.stdout.write(f"{product.sku:8} {product.name:20} {product.price or '-'}")
        self.stdout.write(f"{len(products)} products")
