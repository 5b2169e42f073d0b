from django.db import migrations

from core.migration_ops import PostgreSQLFile


class Migration(migrations.Migration):
    """Records written with a time of their own drop the summaries they change, inside the
    database function that writes them (PostgreSQL; see the .sql file)."""

    dependencies = [
        ('buckets', '0007_summaries'),
    ]

    operations = [
        PostgreSQLFile(__file__, '0008_summaries_drop.sql', '0008_summaries_drop_reverse.sql'),
    ]
