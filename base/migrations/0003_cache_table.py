"""The shared cache table used when DEBUG is off and no REDIS_URL is set (see settings).

Created whatever the current cache configuration, so switching to it later needs no step."""

from django.core.management.commands.createcachetable import Command as CreateCacheTable
from django.db import migrations

TABLE = "django_cache"


def create(apps, schema_editor):
    command = CreateCacheTable()
    command.verbosity = 0
    command.create_table(schema_editor.connection.alias, TABLE, dry_run=False)


def drop(apps, schema_editor):
    schema_editor.execute(f"DROP TABLE IF EXISTS {schema_editor.quote_name(TABLE)}")


class Migration(migrations.Migration):
    dependencies = [("config", "0002_homepage_sitesettings")]

    operations = [migrations.RunPython(create, drop)]
