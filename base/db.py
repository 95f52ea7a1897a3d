"""One SQL statement Django's ORM does not offer: insert rows unless a unique index already
holds their twin, and say which went in (INSERT … ON CONFLICT DO NOTHING RETURNING).

``bulk_create(ignore_conflicts=True)`` does the insert but cannot say which rows conflicted,
and ``create()`` inside a savepoint costs three round trips to learn it. PostgreSQL and SQLite
(3.35+) both speak this form.
"""

from django.db import connection
from django.db.models import Model


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
