"""Keyset pagination: the cursor columns of a batch loop, checked, and the filter
that starts a batch after a saved position.

``WHERE (a, b) > (saved a, saved b) ORDER BY a, b LIMIT n`` stays as fast at the
last batch as at the first, where an OFFSET reads every row it skips. It is only
right when the columns order the rows completely: a column that is not unique
together with the others repeats or skips rows at batch edges, and a NULL sorts
apart from every comparison, so both are refused before the first batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.db.models import Field, Model, Q, QuerySet

from managed_commands.exceptions import InvalidIteration

__all__ = ["Keyset"]


class Keyset:
    """The ordered, unique columns a batch loop pages by.

    Args:
        queryset: The rows to iterate over (model instances, not sliced, not
            ordered by anything else).
        cursor: Field names, ``"pk"`` for the primary key; a ``-`` prefix pages
            that column in descending order.
    """

    def __init__(self, queryset: QuerySet[Any], cursor: Sequence[str]) -> None:
        if isinstance(cursor, str):
            cursor = (cursor,)
        if not cursor:
            raise InvalidIteration("iterate(): cursor needs at least one column, such as ('pk',).")
        model = queryset.model
        _refuse_shape(queryset)
        self.names = tuple(name.lstrip("-") for name in cursor)
        self.descending = tuple(name.startswith("-") for name in cursor)
        self.fields = tuple(_field(model, name) for name in self.names)
        _refuse_nullable(model, self.names, self.fields)
        _refuse_non_unique(model, self.names, self.fields)
        self.ordering = tuple(
            f"-{name}" if down else name
            for name, down in zip(self.names, self.descending, strict=True)
        )

    def after(self, position: Sequence[Any] | None) -> Q:
        """The rows strictly after ``position`` (the cursor values of the last row done)."""
        if position is None:
            return Q()
        # (a, b) > (x, y)  ==  a > x OR (a = x AND b > y), one column at a time.
        condition = Q()
        equal = Q()
        for name, down, value in zip(self.names, self.descending, position, strict=True):
            beyond = Q(**{f"{name}__{'lt' if down else 'gt'}": value})
            condition |= equal & beyond
            equal &= Q(**{name: value})
        return condition

    def position_of(self, row: Model) -> list[Any]:
        """The cursor values of ``row``, as saved (JSON) with the run."""
        return [
            field.value_to_string(row) if _stored_as_text(field) else getattr(row, field.attname)
            for field in self.fields
        ]


def _stored_as_text(field: Field[Any, Any]) -> bool:
    # Dates, times, UUIDs and decimals round-trip through JSON as the text the
    # field itself writes and reads back, with no precision lost on the way.
    return field.get_internal_type() in {
        "DateField",
        "DateTimeField",
        "TimeField",
        "UUIDField",
        "DecimalField",
        "DurationField",
    }


def _refuse_shape(queryset: QuerySet[Any]) -> None:
    query = queryset.query
    if query.is_sliced:
        raise InvalidIteration(
            "iterate() pages the queryset itself: pass it without a slice ([:n]) and use "
            "batch_size= for the size of each batch."
        )
    if getattr(queryset, "_iterable_class", None).__name__ != "ModelIterable":  # type: ignore[union-attr]
        raise InvalidIteration(
            "iterate() needs a queryset of model instances, not values() or values_list(): "
            "the cursor is read from each row."
        )
    if query.order_by:
        raise InvalidIteration(
            f"iterate() orders the rows by its cursor, but this queryset is ordered by "
            f"{', '.join(map(str, query.order_by))}. Drop the order_by(), or page by those "
            f"columns with cursor=(...) ending in a unique one, such as 'pk'."
        )
    if query.distinct_fields:
        raise InvalidIteration("iterate() cannot page a queryset with distinct(*fields).")


def _field(model: type[Model], name: str) -> Field[Any, Any]:
    meta = model._meta
    try:
        field = meta.pk if name == "pk" else meta.get_field(name)
    except FieldDoesNotExist:
        raise InvalidIteration(
            f"iterate(): {meta.label} has no field '{name}' to use as a cursor column."
        ) from None
    if not isinstance(field, Field) or not field.concrete or field.many_to_many:
        raise InvalidIteration(
            f"iterate(): '{name}' of {meta.label} is not a column of its table and cannot "
            f"be a cursor column."
        )
    assert field is not None
    return field


def _refuse_nullable(
    model: type[Model], names: tuple[str, ...], fields: tuple[Field[Any, Any], ...]
) -> None:
    for name, field in zip(names, fields, strict=True):
        if field.null:
            raise InvalidIteration(
                f"iterate(): cursor column '{name}' of {model._meta.label} allows NULL, and "
                f"rows with NULL there would be skipped. Page by columns that are never NULL."
            )


def _refuse_non_unique(
    model: type[Model], names: tuple[str, ...], fields: tuple[Field[Any, Any], ...]
) -> None:
    if any(field.primary_key or field.unique for field in fields):
        return
    columns = {field.name for field in fields}
    meta = model._meta
    together = [set(group) for group in meta.unique_together]
    together += [
        set(constraint.fields) for constraint in meta.total_unique_constraints if constraint.fields
    ]
    if any(group <= columns for group in together):
        return
    raise InvalidIteration(
        f"iterate(): the cursor {tuple(names)} is not unique in {meta.label}, so rows that "
        f"share its values at the edge of a batch would be skipped or repeated. Add a "
        f"unique column at its end, such as cursor=({', '.join(map(repr, names))}, 'pk')."
    )
