"""Database helpers for the hot paths: short write transactions that many threads of one
process run at once, hand-written statements that skip the ORM's query compiler (single-row
updates, rows read back as model instances), and timestamps formatted by the database for
large lists.

SQLite lets one writer in at a time. A writer that finds the database locked waits in SQLite's
busy handler, which sleeps in growing steps (1, 2, 5, 10 ... 100 ms) and so often sleeps long
after the lock was freed; with twenty worker threads finishing nodes together those sleeps were
most of the wall time. `write_transaction()` makes the threads of one process queue on a lock
instead, so each wakes the moment the previous writer commits. Other processes still meet
SQLite's own locking.

The lock is taken only for an outermost transaction (never while this thread already holds
SQLite's write lock) and released as soon as the transaction commits or rolls back, so it can
neither deadlock with writers that do not use it nor outlive its block. Other databases get a
plain `transaction.atomic()`.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from enum import Enum
from typing import TYPE_CHECKING, Any, TypeVar, cast

from django.db import (
    DEFAULT_DB_ALIAS,
    NotSupportedError,
    OperationalError,
    connections,
    transaction,
)
from django.db.models import CharField, Func, Model

if TYPE_CHECKING:
    from django.db.models import Field, ForeignObjectRel

# One writer at a time per process on SQLite (see write_transaction); public so that tests can
# see whether it is held.
SQLITE_WRITERS = threading.Lock()


def _busy_timeout(connection) -> float:
    return float(connection.settings_dict.get("OPTIONS", {}).get("timeout", 5))


@contextmanager
def write_transaction(using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """`transaction.atomic()` whose SQLite writers queue in-process (see the module docstring).

    Raises OperationalError("database is locked") after SQLite's busy timeout, as SQLite would.
    """
    connection = transaction.get_connection(using)
    if connection.vendor != "sqlite" or connection.in_atomic_block:
        with transaction.atomic(using=using):
            yield
        return
    if not SQLITE_WRITERS.acquire(timeout=_busy_timeout(connection)):
        raise OperationalError("database is locked")
    released = False

    def release() -> None:
        nonlocal released
        if not released:
            released = True
            SQLITE_WRITERS.release()

    try:
        with transaction.atomic(using=using):
            # First of the commit hooks: the next writer goes in while this thread publishes
            # events and enqueues tasks registered by the block.
            transaction.on_commit(release, using=using)
            yield
    finally:
        release()


def update_row(
    model: type[Model],
    pk: Any,
    values: Mapping[str, Any],
    *,
    where: str = "",
    params: Sequence[Any] = (),
    using: str = DEFAULT_DB_ALIAS,
) -> int:
    """UPDATE one row by primary key, with `where` as extra SQL conditions, without the ORM.

    For statements every DAG node runs: the ORM spends 200-550 us of CPU compiling such an
    update, the database 20 us running it. Each value is adapted by its field exactly as the
    ORM would (timestamps, JSON, decimals). Returns the number of rows changed.
    """
    connection = connections[using]
    quote = connection.ops.quote_name
    meta = model._meta
    assignments, args = [], []
    for name, value in values.items():
        field = _concrete(meta.get_field(name))
        if isinstance(value, Enum):  # choices: the database driver may not take the member
            value = value.value
        assignments.append(f"{quote(_column(field))} = %s")
        args.append(field.get_db_prep_save(value, connection))
    sql = (
        f"UPDATE {quote(meta.db_table)} SET {', '.join(assignments)} "
        f"WHERE {quote(_column(meta.pk))} = %s{f' AND ({where})' if where else ''}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*args, pk, *params])
        return cursor.rowcount


def _concrete(field: Field[Any, Any] | ForeignObjectRel) -> Field[Any, Any]:
    """The callers name concrete columns, never reverse relations (for the type checker)."""
    return cast("Field[Any, Any]", field)


def _column(field: Field[Any, Any] | None) -> str:
    """A concrete field's column (the stubs allow None, for fields with no column)."""
    return cast(str, cast("Field[Any, Any]", field).column)


def insert_row(
    model: type[Model], values: Mapping[str, Any], *, using: str = DEFAULT_DB_ALIAS
) -> Any:
    """INSERT one row without the ORM (see `update_row`) and return its primary key."""
    connection = connections[using]
    quote = connection.ops.quote_name
    meta = model._meta
    fields = [_concrete(meta.get_field(name)) for name in values]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(meta.db_table)} "
            f"({', '.join(quote(_column(field)) for field in fields)}) "
            f"VALUES ({', '.join(['%s'] * len(fields))}) RETURNING {quote(_column(meta.pk))}",
            [
                field.get_db_prep_save(value, connection)
                for field, value in zip(fields, values.values(), strict=True)
            ],
        )
        return cursor.fetchone()[0]


@functools.lru_cache(maxsize=128)
def _row_reading(
    model: type[Model], fields: tuple[str, ...] | None, using: str
) -> tuple[str, tuple[str, ...], tuple]:
    """The column list, attribute names and value converters for reading `fields` of `model`
    (all concrete fields when None), worked out once: `Model.objects.raw` works them out again
    for every query, which cost more than the query itself."""
    connection = connections[using]
    wanted = None if fields is None else set(fields)
    chosen = [
        field
        for field in model._meta.concrete_fields
        if wanted is None or field.name in wanted or field.attname in wanted
    ]
    converters = []
    for index, field in enumerate(chosen):
        column = field.get_col(model._meta.db_table)
        # The same converters, in the same order, as the ORM's SQLCompiler.get_converters.
        found = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
        if found:
            converters.append((index, tuple(found), column))
    columns = ", ".join(connection.ops.quote_name(_column(field)) for field in chosen)
    return columns, tuple(field.attname for field in chosen), tuple(converters)


ModelT = TypeVar("ModelT", bound=Model)


def read_instances(
    model: type[ModelT],
    sql: str,
    params: Sequence[Any],
    *,
    fields: Sequence[str] | None = None,
    using: str = DEFAULT_DB_ALIAS,
) -> list[ModelT]:
    """The rows of `sql` as model instances, converted as ORM reads are.

    `sql` selects (or returns) `{columns}`: the columns of `fields`, or of every concrete
    field. Fields not read are deferred, as with `QuerySet.only()`.
    """
    connection = connections[using]
    columns, attnames, converters = _row_reading(
        model, None if fields is None else tuple(fields), using
    )
    with connection.cursor() as cursor:
        cursor.execute(sql.format(columns=columns), params)
        rows = cursor.fetchall()
    instances = []
    for row in rows:
        values = list(row)
        for index, functions, column in converters:
            value = values[index]
            for convert in functions:
                value = convert(value, column, connection)
            values[index] = value
        instances.append(model.from_db(using, attnames, values))
    return instances


class IsoTimestampText(Func):
    """A datetime column as the API's text (`2026-11-23T19:45:17.123Z`, see
    `config.api.formatting.iso`), formatted by the database.

    For hot list endpoints: parsing hundreds of timestamps into aware datetimes and formatting
    them again was a large part of their cost. Milliseconds are truncated, as `iso()` does.
    """

    output_field = CharField()

    def as_sqlite(self, compiler, connection, **extra_context):
        # Django stores `YYYY-MM-DD HH:MM:SS[.ffffff]` in UTC; the fraction is absent at .000000.
        column, params = compiler.compile(self.source_expressions[0])
        sql = (
            f"(substr({column}, 1, 10) || 'T' || substr({column}, 12, 8) || '.' || "
            f"substr({column} || '.000', 21, 3) || 'Z')"
        )
        return sql, params * 4

    def as_postgresql(self, compiler, connection, **extra_context):
        column, params = compiler.compile(self.source_expressions[0])
        sql = f"""to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')"""
        return sql, params

    def as_sql(
        self,
        compiler: Any,
        connection: Any,
        function: str | None = None,
        template: str | None = None,
        arg_joiner: str | None = None,
        **extra_context: Any,
    ) -> Any:
        raise NotSupportedError(f"IsoTimestampText has no SQL for {connection.vendor}")
