"""What Django's ORM does not offer and the money path needs.

``insert_new``: insert rows unless a unique index already holds their twin, and say which went
in (INSERT … ON CONFLICT DO NOTHING RETURNING). ``bulk_create(ignore_conflicts=True)`` does the
insert but cannot say which rows conflicted, and ``create()`` inside a savepoint costs three
round trips to learn it. PostgreSQL and SQLite (3.35+) both speak this form.

``Prepared``: a queryset compiled once per process and run again with new values.
"""

from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.db.models import Model, QuerySet
from django.db.models.sql.compiler import SQLCompiler


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
    does, and on a hot path only the values change between calls. ``build`` is called once with
    a stand-in for each named value; the stand-ins are found again among the compiled
    parameters and replaced by the real values on every call. A value must reach the SQL
    unchanged (``exact`` lookups, ``Value()``): a lookup that rewrites its value (``iexact`` and
    ``contains`` escape it on SQLite) would be refilled unrewritten, so compare through an
    expression (``Upper(Value(...))``) instead. Datetimes are adapted as the ORM adapts them.
    """

    def __init__(self, build: Callable[..., QuerySet], **stand_ins: str | int | datetime) -> None:
        self.build = build
        self.stand_ins = stand_ins
        self.compiled: dict[str, tuple[SQLCompiler, str, list[tuple[str | None, Any]]]] = {}

    def compile(self) -> tuple[SQLCompiler, str, list[tuple[str | None, Any]]]:
        key = connection.vendor  # the settings (and tests) may point at another database
        if key not in self.compiled:
            compiler = self.build(**self.stand_ins).query.get_compiler(connection=connection)
            sql, params = compiler.as_sql()
            stand_ins = {name: _adapt(value) for name, value in self.stand_ins.items()}
            slots = []
            for value in params:
                name = next(
                    (n for n, v in stand_ins.items() if type(v) is type(value) and v == value),
                    None,
                )
                slots.append((name, value))
            if missing := set(self.stand_ins) - {name for name, _ in slots}:
                raise ImproperlyConfigured(
                    f"stand-ins {sorted(missing)} are not among the compiled parameters: "
                    "their lookup rewrites them (see Prepared)"
                )
            self.compiled[key] = (compiler, sql, slots)
        return self.compiled[key]

    def rows(self, **values: Any) -> list[tuple]:
        """The rows, through the same converters the queryset's own results would pass."""
        compiler, sql, slots = self.compile()
        params = [_adapt(values[name]) if name else value for name, value in slots]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        return list(compiler.results_iter(results=[rows], tuple_expected=True))


def _adapt(value: Any) -> Any:
    if isinstance(value, datetime):
        return connection.ops.adapt_datetimefield_value(value)
    return value
