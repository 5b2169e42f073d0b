from django.db import migrations

from core.migration_ops import PostgreSQLFile


class Migration(migrations.Migration):
    """The callback's writer on PostgreSQL also returns the bucket it stored records in."""

    dependencies = [
        ('devices', '0008_callback_activity'),
    ]

    operations = [
        PostgreSQLFile(
            __file__,
            '0009_callback_bucket_event.sql',
            ['0009_callback_bucket_event_reverse.sql', '0006_callback_events.sql'],
        ),
    ]
