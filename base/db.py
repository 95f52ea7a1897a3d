"""What Django's ORM does not offer and the money path needs.

``insert_new``: insert rows unless a unique index already holds their twin, and say which went
in (INSERT … ON CONFLICT DO NOTHING RETURNING). ``bulk_create(ignore_conflicts=True)`` does the
insert but cannot say which rows conflicted, and ``create()`` inside a savepoint costs three
round trips to learn it. PostgreSQL and SQLite (3.35+) both speak this form.

``insert_row`` and ``update_row``: ``save()`` of a new row and ``save(update_fields=...)``,
each as one statement built from the model.

``Prepared``: a queryset compiled once per process and run again with new values.

On PostgreSQL all of them run through a server-binding cursor (``statement_cursor``), so psycopg
prepares them once per connection (``prepare_threshold``, config/settings.py): PostgreSQL
then parses and plans them once instead of on every call, which was most of its time on the
webhook. Django's own queries bind on the client and are never prepared.
"""

import re
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connection, connections
from django.db.backends.utils import CursorWrapper
from django.db.models import NOT_PROVIDED, Model, QuerySet
from django.db.models.signals import post_save, pre_save
from django.db.models.sql.compiler import SQLCompiler
from django.db.transaction import TransactionManagementError, mark_for_rollback_on_error


def insert_new(objs: list[Model], returning: str = "id") -> list:
    """Insert ``objs`` (one model, primary keys left to the database) in one statement; returns
    ``returning`` of each row that went in. Rows a unique index refused are left out."""
    if not objs:
        return []
    return _insert(objs, f"ON CONFLICT DO NOTHING RETURNING {_column(objs[0], returning)}")


def insert_row(obj: Model) -> None:
    """``obj.save()`` of a new row (its primary key left to the database): the same INSERT,
    checks and signals, without the ORM compiling it anew and, on PostgreSQL, prepared."""
    _refuse_shapes(obj)
    if obj.pk is not None:
        raise ValueError("insert_row inserts new rows; this one has a primary key")
    obj._prepare_related_fields_for_save(operation_name="save")
    with _as_save(obj, update_fields=None):
        [obj.pk] = _insert([obj], f"RETURNING {_column(obj, obj._meta.pk.name)}")


@contextmanager
def _as_save(obj: Model, update_fields: frozenset[str] | None) -> Iterator[None]:
    """What Model.save_base does around its statement: the signals (``created`` for an
    insert, which has no update_fields), rollback marking on error, the instance's state."""
    cls, using = type(obj), connection.alias
    pre_save.send(sender=cls, instance=obj, raw=False, using=using, update_fields=update_fields)
    with mark_for_rollback_on_error(using):
        yield
    obj._state.db, obj._state.adding = using, False
    post_save.send(
        sender=cls,
        instance=obj,
        created=update_fields is None,
        update_fields=update_fields,
        raw=False,
        using=using,
    )


def _column(obj: Model, name: str) -> str:
    return connection.ops.quote_name(obj._meta.get_field(name).column)


def _insert(objs: list[Model], tail: str) -> list:
    opts = objs[0]._meta
    fields = [f for f in opts.concrete_fields if not f.primary_key]
    qn = connection.ops.quote_name
    params, rows = [], []
    for obj in objs:
        rows.append("(" + ", ".join(["%s"] * len(fields)) + ")")
        params += [f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields]
    # Table and column names come from the model, values are parameters.
    sql = (
        f"INSERT INTO {qn(opts.db_table)} ({', '.join(qn(f.column) for f in fields)}) "  # noqa: S608
        f"VALUES {', '.join(rows)} {tail}"
    )
    with statement_cursor() as cursor:
        cursor.execute(sql, params)
        return [row[0] for row in cursor.fetchall()]


def update_row(obj: Model, names: list[str]) -> None:
    """``obj.save(update_fields=names)``: the same UPDATE (auto_now fields refreshed), the same
    checks and signals, without the ORM compiling it anew on every save (a third of a webhook
    delivery's Python was its two saves) and, on PostgreSQL, prepared. An append-only row
    (``append_only``, the audit trails) is refused, as its save() refuses."""
    if not names:
        return  # as save(update_fields=[]) does
    opts = obj._meta
    _refuse_shapes(obj)
    if getattr(obj, "append_only", False):
        raise ValueError(f"{opts.verbose_name_plural} are append-only")
    if obj.pk is None:
        raise ValueError("update_row updates a saved row; this one has no primary key")
    fields = list(dict.fromkeys(opts.get_field(name) for name in names))  # once each
    if any(f.primary_key or not f.concrete or f.many_to_many for f in fields):
        raise ValueError(f"update_row needs concrete non-key fields, not {names}")
    if related := [f for f in fields if f.is_relation]:  # Django's check, for these alone
        obj._prepare_related_fields_for_save(operation_name="save", fields=related)
    qn = connection.ops.quote_name
    sql = (
        f"UPDATE {qn(opts.db_table)} SET {', '.join(f'{qn(f.column)} = %s' for f in fields)} "  # noqa: S608
        f"WHERE {qn(opts.pk.column)} = %s"
    )
    with _as_save(obj, update_fields=frozenset(names)), statement_cursor() as cursor:
        params = [f.get_db_prep_save(f.pre_save(obj, False), connection) for f in fields]
        cursor.execute(sql, [*params, opts.pk.get_db_prep_value(obj.pk, connection)])
        if cursor.rowcount != 1:
            raise DatabaseError("Save with update_fields did not affect any rows.")


def _refuse_shapes(obj: Model) -> None:
    if not _plain(type(obj)):
        raise ValueError(f"{obj._meta.label} needs Model.save()")


@cache
def _plain(model: type[Model]) -> bool:
    """Whether save() writes one row of plain values: no parent table, no ordering column,
    no value the database makes (generated columns, ``db_default``)."""
    opts = model._meta
    return not (
        opts.parents
        or opts.order_with_respect_to
        or any(f.generated or f.db_default is not NOT_PROVIDED for f in opts.concrete_fields)
    )


@contextmanager
def statement_cursor() -> Iterator[CursorWrapper]:
    """A cursor for the statements a hot path runs again and again: on PostgreSQL one that
    binds on the server and has psycopg prepare each statement on its first run on the
    connection (a connection without ``prepare_threshold``, behind a transaction-mode pooler,
    prepares nothing); anywhere else, and while queries are logged (DEBUG, a test counting
    them: the log shows the SQL as Django's own cursor runs it), Django's own. Either way
    Django wraps it: its errors and execute wrappers."""
    db = connections[DEFAULT_DB_ALIAS]  # this thread's, looked up once
    if db.vendor == "postgresql" and not db.queries_logged:
        db.close_if_health_check_failed()  # as Django's own cursor() does
        db.ensure_connection()
        if db.connection.prepare_threshold is not None:
            db.validate_thread_sharing()
            with db.wrap_database_errors:
                raw = _preparing_cursor()(db.connection)
                _match_time_zone(db, raw)
            with db.make_cursor(raw) as cursor:
                yield cursor
            return
    with db.cursor() as cursor:
        yield cursor


@cache
def _preparing_cursor() -> type:
    from django.db.backends.postgresql.base import ServerBindingCursor

    class PreparingCursor(ServerBindingCursor):
        """Prepares on the first run: psycopg's count towards ``prepare_threshold`` keeps
        only the last hundred statements of the connection, and Django's own (their values
        written in) would push a webhook's out before their fifth run between pages."""

        def execute(self, query, params=None, *, prepare=None, **kwargs):
            return super().execute(query, params, prepare=True, **kwargs)

    return PreparingCursor


def _match_time_zone(db: Any, cursor: Any) -> None:
    """What Django's create_cursor does for a connection whose time zone was changed since
    it opened (override_settings in tests)."""
    from django.db.backends.postgresql.base import TIMESTAMPTZ_OID, Format, register_tzloader

    if db.timezone != db.connection.adapters.get_loader(TIMESTAMPTZ_OID, Format.TEXT).timezone:
        register_tzloader(db.timezone, cursor)


class Prepared:
    """A query the ORM builds and compiles once per process, then runs with new values.

    On a small machine building and compiling a queryset costs several times what running it
    does, and on a hot path only the values change between calls. ``build`` is compiled twice,
    with two stand-ins for each named value: the parameters that differ between the two are
    the slots refilled on every call, and each must be exactly one stand-in in both. A value
    must reach the SQL unchanged (``exact`` lookups, ``Value()``); a lookup that rewrites it
    (``iexact`` and ``contains`` escape it on SQLite, ``%`` and ``_`` in every string stand-in
    make sure they do) is refused when the query first runs, so compare through an expression
    (``Upper(Value(...))``) instead. Datetimes are adapted as the ORM adapts them.

    On PostgreSQL a refilled value is bound on the server, where a string has no declared
    type: one where PostgreSQL cannot infer it (a ``Value(str)`` selected, ``Concat``,
    ``Coalesce``) needs an ``output_field``-typed cast, and fails only with queries not
    logged, so test such a query on PostgreSQL without counting queries.
    """

    def __init__(self, build: Callable[..., QuerySet], **stand_ins: str | int | datetime) -> None:
        self.build = build
        self.stand_ins = stand_ins
        self.compiled: dict[str, tuple[SQLCompiler, str, list[tuple[str | None, Any]]]] = {}
        self._converters: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def compile(self) -> tuple[SQLCompiler, str, list[tuple[str | None, Any]]]:
        key = connection.vendor  # the settings (and tests) may point at another database
        if key not in self.compiled:
            ones = {name: _stand_in(value, 0) for name, value in self.stand_ins.items()}
            twos = {name: _stand_in(value, 1) for name, value in self.stand_ins.items()}
            compiler = self.build(**ones).query.get_compiler(connection=connection)
            sql, params = compiler.as_sql()
            other_sql, other_params = (
                self.build(**twos).query.get_compiler(connection=connection).as_sql()
            )
            if sql != other_sql or len(params) != len(other_params):
                raise ImproperlyConfigured("the query's SQL depends on its values (see Prepared)")
            slots: list[tuple[str | None, Any]] = []
            for one, two in zip(params, other_params, strict=True):
                if type(one) is type(two) and one == two:
                    slots.append((None, one))  # a constant of the query
                    continue
                names = [
                    name
                    for name in self.stand_ins
                    if _same(_adapt(ones[name]), one) and _same(_adapt(twos[name]), two)
                ]
                if len(names) != 1:
                    raise ImproperlyConfigured(
                        f"a parameter of the query is not one of the stand-ins "
                        f"{sorted(self.stand_ins)} as given: {one!r} (its lookup rewrites it; "
                        "see Prepared)"
                    )
                slots.append((names[0], one))
            if missing := set(self.stand_ins) - {name for name, _ in slots}:
                raise ImproperlyConfigured(
                    f"stand-ins {sorted(missing)} are not among the compiled parameters "
                    "(see Prepared)"
                )
            if connection.vendor == "postgresql":
                sql, slots = _write_constants_in(sql, slots)
            self.compiled[key] = (compiler, sql, slots)
        return self.compiled[key]

    def converters(self, compiler: SQLCompiler) -> dict:
        """The compiler's converters for this thread's connection, worked out once (they cost
        as much as the rest of a call)."""
        wrapper = connections[DEFAULT_DB_ALIAS]
        if (found := self._converters.get(wrapper)) is None:
            fields = [column for column, *_ in compiler.select[: compiler.col_count]]
            if compiler.has_composite_fields(fields):
                raise ImproperlyConfigured("Prepared does not read composite fields")
            found = self._converters[wrapper] = compiler.get_converters(fields)
        return found

    def rows(self, **values: Any) -> list[tuple]:
        """The rows, through the same converters the queryset's own results would pass."""
        compiler, sql, slots = self.compile()
        if (
            compiler.query.select_for_update
            and connection.features.has_select_for_update
            and connection.get_autocommit()
        ):  # what the ORM checks when it compiles, which happens only once here
            raise TransactionManagementError(
                "select_for_update cannot be used outside of a transaction."
            )
        params = [_adapt(values[name]) if name else value for name, value in slots]
        with statement_cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        if converters := self.converters(compiler):
            return [tuple(row) for row in compiler.apply_converters(rows, converters)]
        return rows


PLACEHOLDER = re.compile(r"%[s%]")
_MISSING = object()


def _write_constants_in(sql: str, slots: list) -> tuple[str, list]:
    """The query with its constants written into the SQL, as client-side binding writes every
    value, and only the refilled values left as parameters: a prepared statement's generic
    plan then sees ``status = 'active'`` and can use the partial indexes that select."""
    kept, at = [], iter(slots)

    def write(placeholder: re.Match) -> str:
        if placeholder.group() == "%%":
            return "%%"
        name, value = next(at, (None, _MISSING))
        if value is _MISSING:
            raise ImproperlyConfigured("the query has more placeholders than values")
        if name is not None:
            kept.append((name, value))
            return "%s"
        return connection.ops.compose_sql("%s", [value]).replace("%", "%%")

    written = PLACEHOLDER.sub(write, sql)
    if next(at, None) is not None:
        raise ImproperlyConfigured("the query has more values than placeholders (see Prepared)")
    return written, kept


def _stand_in(value: Any, which: int) -> Any:
    """One of two distinct stand-ins for ``value``; strings carry the characters LIKE escapes."""
    if isinstance(value, str):
        return f"{value}%_{which}"
    if isinstance(value, datetime):
        return value + timedelta(seconds=which)
    return value + which


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def _adapt(value: Any) -> Any:
    if isinstance(value, datetime):
        return connection.ops.adapt_datetimefield_value(value)
    return value
