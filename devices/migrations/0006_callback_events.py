from django.db import migrations

from core.migration_ops import PostgreSQLFile


class Migration(migrations.Migration):
    """The callback's writer on PostgreSQL also returns what to announce as live events."""

    dependencies = [
        ('devices', '0005_callback'),
    ]

    operations = [
        PostgreSQLFile(
            __file__,
            '0006_callback_events.sql',
            ['0006_callback_events_reverse.sql', '0005_callback.sql'],
        ),
    ]
