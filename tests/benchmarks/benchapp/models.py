"""Rows of the batch-loop benchmark (``batches``): a counter each run adds 1 to."""

from django.db import models


class BenchRow(models.Model):
    counter = models.IntegerField(default=0)

    class Meta:
        app_label = "benchapp"

    def __str__(self) -> str:
        return f"row {self.pk}"
