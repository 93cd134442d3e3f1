"""Rows for the batch-loop tests: each counts how many times it was processed."""

from django.db import models


class Item(models.Model):
    number = models.IntegerField(unique=True)
    group = models.IntegerField(default=0)
    processed = models.IntegerField(default=0)
    nullable = models.IntegerField(null=True)

    class Meta:
        app_label = "batchmodels"

    def __str__(self) -> str:
        return f"item {self.number}"


class Label(models.Model):
    """Points at an item: a dry run that breaks this key must fail as the real run would."""

    item = models.ForeignKey(Item, on_delete=models.CASCADE)
    text = models.CharField(max_length=50, default="")

    class Meta:
        app_label = "batchmodels"

    def __str__(self) -> str:
        return self.text
