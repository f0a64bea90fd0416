"""Claiming work: the one statement the ORM cannot express, used for every kind of claim.

A claim changes rows only while they are still in the state that makes them free to take (a
pending node, a running node whose lease lapsed, a pending run, the next numbers of a counter)
and hands back what it took, in one statement: `UPDATE … WHERE … RETURNING …`. A second worker
or a duplicate delivery finds the conditions no longer hold and gets nothing, and no lock is held
between a read and a write, because there is no separate read.

The statement is the ORM's own UPDATE (`QuerySet.update()`'s conditions, values and expressions,
compiled by Django) with a RETURNING clause added; SQLite 3.35+ and PostgreSQL both take it. The
rows come back as model instances, their values converted by their fields exactly as ORM reads
convert them; fields not returned are deferred, as with `QuerySet.only()`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar, cast

from django.db import connections, router, transaction
from django.db.models import Model, QuerySet
from django.db.models.sql import UpdateQuery

ModelT = TypeVar("ModelT", bound=Model)


def claim(
    queryset: QuerySet[ModelT],
    *,
    changes: Mapping[str, Any],
    returning: Sequence[str] | None = None,
) -> list[ModelT]:
    """Apply `changes` (as `queryset.update(**changes)` would) to the rows that still match
    `queryset`, and return those rows as they are after the change.

    `returning` names the fields to read back (every concrete field when None). An empty list
    means nothing was taken: the rows no longer matched.
    """
    if queryset.query.is_sliced:
        raise TypeError("Cannot claim from a sliced queryset.")
    model = queryset.model
    using = router.db_for_write(model)
    query = cast(UpdateQuery, queryset.query.chain(UpdateQuery))
    query.add_update_values(dict(changes))
    query.annotations = {}
    update_sql, params = query.get_compiler(using).as_sql()
    columns, attnames, converters = _returned_fields(
        model, None if returning is None else tuple(returning), using
    )
    connection = connections[using]
    with transaction.mark_for_rollback_on_error(using=using), connection.cursor() as cursor:
        cursor.execute(f"{update_sql} RETURNING {columns}", params)
        rows = cursor.fetchall()
    claimed = []
    for row in rows:
        values = list(row)
        for index, functions, column in converters:
            value = values[index]
            for convert in functions:
                value = convert(value, column, connection)
            values[index] = value
        claimed.append(model.from_db(using, attnames, values))
    return claimed


def claim_one(
    queryset: QuerySet[ModelT],
    *,
    changes: Mapping[str, Any],
    returning: Sequence[str] | None = None,
) -> ModelT | None:
    """`claim` of at most one row (the queryset names it by primary key); None if not taken."""
    rows = claim(queryset, changes=changes, returning=returning)
    return rows[0] if rows else None


@functools.lru_cache(maxsize=128)
def _returned_fields(
    model: type[Model], fields: tuple[str, ...] | None, using: str
) -> tuple[str, tuple[str, ...], tuple[tuple[int, tuple[Any, ...], Any], ...]]:
    """The RETURNING list, attribute names and value converters for `fields` of `model`, worked
    out once per model and field list."""
    connection = connections[using]
    wanted = None if fields is None else set(fields)
    meta = model._meta  # Django's documented Model _meta API
    chosen = [
        field
        for field in meta.concrete_fields
        if wanted is None or field.name in wanted or field.attname in wanted
    ]
    if wanted is not None and len(chosen) != len(wanted):
        known = {name for field in chosen for name in (field.name, field.attname)}
        raise ValueError(f"{model.__name__} has no fields {sorted(wanted - known)}")
    converters = []
    for index, field in enumerate(chosen):
        column = field.get_col(meta.db_table)
        # The same converters, in the same order, as the ORM applies to the rows it reads.
        found = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
        if found:
            converters.append((index, tuple(found), column))
    quote = connection.ops.quote_name
    columns = ", ".join(quote(cast(str, field.column)) for field in chosen)
    return columns, tuple(field.attname for field in chosen), tuple(converters)
