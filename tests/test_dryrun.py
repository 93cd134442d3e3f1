"""The pieces of a dry run, in process: counting, refusals, mail and tasks held back."""

from __future__ import annotations

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import override_settings

from managed_commands.exceptions import DryRunRefused
from managed_commands.runs.dryrun import DryRun, _value_rows
from tests.batchmodels.models import Item

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("sql", "rows"),
    [
        ('INSERT INTO "t" ("a", "b") VALUES (%s, %s)', 1),
        ('INSERT INTO "t" ("a", "b") VALUES (%s, %s), (%s, %s), (%s, %s) RETURNING "t"."id"', 3),
        ("INSERT INTO `t` (`a`) VALUES (%s), (%s) ON DUPLICATE KEY UPDATE `a` = VALUES(`a`)", 2),
        ('INSERT INTO "t" ("a") SELECT "a" FROM "u"', 0),
    ],
)
def test_the_rows_of_an_insert_are_its_value_groups(sql, rows):
    assert _value_rows(sql) == rows


def test_writes_are_counted_by_table_and_kind_then_rolled_back():
    dry = DryRun("fix", ["default"], [])
    with dry.rolled_back():
        Item.objects.bulk_create([Item(number=n) for n in range(5)])
        Item.objects.filter(number__lt=3).update(processed=1)
        Item.objects.filter(number=4).delete()
        list(Item.objects.all())  # a read is no write
    assert Item.objects.count() == 0
    assert dry.summary() == {
        "rows": {"batchmodels_item": {"INSERT": 5, "UPDATE": 3, "DELETE": 1}},
        "statements": 4,  # the DELETE of the items' labels, none, counts as a statement
        "mails": 0,
        "tasks": 0,
        "batches": 0,
    }


def test_the_history_table_is_left_out_of_the_summary():
    dry = DryRun("fix", ["default"], ["batchmodels_item"])
    with dry.rolled_back():
        Item.objects.create(number=1)
    assert dry.summary()["rows"] == {} and dry.summary()["statements"] == 0


def test_a_write_to_a_database_that_is_not_rolled_back_is_refused_before_it_runs():
    dry = DryRun("fix", [], [])
    with pytest.raises(DryRunRefused) as refused, dry.rolled_back():
        Item.objects.create(number=1)
    assert str(refused.value) == (
        "Dry run of 'fix' refused a write to database 'default', which it cannot roll back "
        "(it rolls back: none). Skip that write when self.dry_run is true."
    )


def test_a_commit_inside_a_dry_run_is_refused():
    dry = DryRun("fix", ["default"], [])
    refused = pytest.raises(DryRunRefused, match="refused 'COMMIT' on database 'default'")
    with refused, dry.rolled_back(), connection.cursor() as cursor:
        Item.objects.create(number=1)
        cursor.execute("COMMIT")
    assert Item.objects.count() == 0


def test_mail_goes_to_memory_and_is_counted_and_the_outbox_is_given_back():
    mail.outbox = [object()]
    dry = DryRun("fix", ["default"], [])
    with dry.rolled_back():
        mail.send_mail("s", "b", "from@example.com", ["to@example.com"])
        mail.send_mail("s", "b", "from@example.com", ["to@example.com"])
    assert dry.mails == 2 and "2 mails not sent" in dry.describe()
    assert len(mail.outbox) == 1


def test_task_enqueues_go_to_the_dummy_backend_and_are_counted():
    tasks = pytest.importorskip("django.tasks")
    from tests.tasks_for_dry_runs import note  # defined with @task, which needs django.tasks

    immediate = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}
    dry = DryRun("fix", ["default"], [])
    with override_settings(TASKS=immediate):
        with dry.rolled_back():
            note.enqueue("from the dry run")
        assert dry.tasks == 1 and "1 task not enqueued" in dry.describe()
        assert Item.objects.count() == 0  # the task did not run
        note.enqueue("for real")
        assert Item.objects.count() == 1
        assert type(tasks.task_backends["default"]).__name__ == "ImmediateBackend"
