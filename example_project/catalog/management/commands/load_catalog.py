from catalog.models import Product
from managed_commands import ManagedBaseCommand

PRODUCTS = [("TEA-01", "Green tea"), ("TEA-02", "Black tea"), ("CUP-01", "Café cup ☕")]


class Command(ManagedBaseCommand):
    help = "Load the initial catalog (a data command that must run exactly once)."
    run_once = True
    supports_dry_run = True  # python manage.py load_catalog --dry-run

    def handle(self, *args, **options):
        for sku, name in PRODUCTS:
            Product.objects.create(sku=sku, name=name)
        self.stdout.write(self.style.SUCCESS(f"Loaded {len(PRODUCTS)} products."))
