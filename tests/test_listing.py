"""How statuses are put into words, JSON and Mermaid."""

from __future__ import annotations

import pytest
from django.test import override_settings

from managed_commands import listing
from managed_commands.models import CommandExecution
from managed_commands.status import CommandState, command_statuses
from managed_commands.tenants import TenantStatus
from managed_commands.testing.utils import run_command

pytestmark = pytest.mark.django_db(transaction=True)


def status_of(name):
    [status] = [s for s in command_statuses() if s.command.name == name]
    return status


def test_unapplied_migrations_are_marked_in_requires(unapplied_initial):
    assert listing.requirement_text(status_of("needs_schema")) == (
        "noop_once, managed_commands.0001_initial (not applied)"
    )
    assert listing.as_json(status_of("needs_schema"))["unapplied_migrations"] == [
        "managed_commands.0001_initial"
    ]


def test_a_faked_run_says_so():
    run_command("run_pending_commands", fake=["noop_once"])
    [(app_label, lines)] = listing.by_app([status_of("noop_once")])
    assert app_label == "testapp"
    assert lines[0].startswith(" [X] noop_once  faked ")
    assert lines[0].endswith(" (0.00 s)")


@override_settings(
    INSTALLED_APPS=["managed_commands", "tests.testapp", "tests.brokenapp"],
)
def test_mermaid_draws_unknown_requirements_dashed():
    graph = listing.mermaid(command_statuses()).splitlines()
    assert '    cmd_noop_onse["noop_onse (unknown)"]:::unknown' in graph
    assert "    cmd_noop_onse --> cmd_requires_typo" in graph
    assert '    mig_nosuchapp_0001_initial[("nosuchapp.0001_initial")]:::migration' in graph
    assert '    subgraph app_brokenapp["brokenapp"]' in graph


def tenant(schema):
    return TenantStatus(schema, schema, command_statuses(scope=schema))


def test_the_matrix_widens_columns_for_long_schemas_and_marks_running():
    run_command("noop_once")  # recorded unscoped: pending in both tenants below
    long = "a-long-tenant-name"
    CommandExecution.objects.create(command_name="slow", scope=long, status="running")
    CommandExecution.objects.create(command_name="once", scope="b", status="failed")
    header, groups = listing.matrix([tenant(long), tenant("b")], pending=True)
    assert header == "               a-long-tenant-name  b"
    assert groups == [
        (
            "testapp",
            [
                " needs_once    pending             pending",
                " needs_schema  pending             pending",
                " noop_once     pending             pending",
                " once          pending             failed",
            ],
        )
    ]
    _, [(_, lines)] = listing.matrix([tenant(long), tenant("b")])
    assert " slow          running             -" in lines


def test_no_tenants_make_an_empty_matrix():
    assert listing.matrix([]) == ("", [])
    assert listing.matrix_json([]) == []
    assert listing.pending_in([]) == {}


def test_a_running_batch_loop_shows_its_progress_on_its_line_and_in_json(
    django_assert_num_queries,
):
    earlier = CommandExecution.objects.create(command_name="slow", status="interrupted")
    CommandExecution.objects.create(
        command_name="slow",
        status="running",
        tick_count=1_240_000,
        tick_total=2_000_000,
        tick_rate=3000.0,
        resumed_from=earlier,
    )
    status = status_of("slow")
    with django_assert_num_queries(0):  # read with the row, never one query per command
        [(_, [line])] = listing.by_app([status])
        entry = listing.as_json(status)
    assert line.startswith(" [R] slow  running since ")
    assert line.endswith(" · 62 % (1,240,000 / 2,000,000), ETA 4 min")
    assert entry["progress"] == {
        "count": 1_240_000,
        "total": 2_000_000,
        "percent": 62,
        "per_second": 3000.0,
        "eta_seconds": 253,
    }
    assert entry["resumed_from"] == earlier.pk


def test_a_run_without_progress_has_none():
    CommandExecution.objects.create(command_name="slow", status="running")
    [(_, [line])] = listing.by_app([status_of("slow")])
    assert line.startswith(" [R] slow  running since ")
    assert "·" not in line
    assert listing.as_json(status_of("slow"))["progress"] is None
    assert listing.as_json(status_of("once"))["progress"] is None  # never ran
    assert listing.as_json(status_of("once"))["resumed_from"] is None


def test_every_state_has_a_mark_and_a_graph_style():
    assert set(listing.MARKS) == set(CommandState)
    assert set(CommandState) <= set(listing._STYLES)
    assert len(set(listing.MARKS.values())) == len(CommandState)
