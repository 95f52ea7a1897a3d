"""What Django's ORM does not offer and the money path needs.

``insert_new``: insert rows unless a unique index already holds their twin, and say which went
in (INSERT … ON CONFLICT DO NOTHING RETURNING). ``bulk_create(ignore_conflicts=True)`` does the
insert but cannot say which rows conflicted, and ``create()`` inside a savepoint costs three
round trips to learn it. PostgreSQL and SQLite (3.35+) both speak this form.

``Prepared``: a queryset compiled once per process and run again with new values.
"""

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.db.models import Model, QuerySet
from django.db.models.sql.compiler import SQLCompiler
from django.db.transaction import TransactionManagementError


def insert_new(objs: list[Model], returning: str = "id") -> list:
    """Insert ``objs`` (one model, primary keys left to the database) in one statement; returns
    ``returning`` of each row that went in. Rows a unique index refused are left out."""
    if not objs:
        return []
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
        f"VALUES {', '.join(rows)} ON CONFLICT DO NOTHING "
        f"RETURNING {qn(opts.get_field(returning).column)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [row[0] for row in cursor.fetchall()]


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
    """

    def __init__(self, build: Callable[..., QuerySet], **stand_ins: str | int | datetime) -> None:
        self.build = build
        self.stand_ins = stand_ins
        self.compiled: dict[str, tuple[SQLCompiler, str, list[tuple[str | None, Any]]]] = {}

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
            self.compiled[key] = (compiler, sql, slots)
        return self.compiled[key]

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
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        return list(compiler.results_iter(results=[rows], tuple_expected=True))


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
