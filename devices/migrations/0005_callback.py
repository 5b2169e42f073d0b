from django.db import migrations

from core.migration_ops import PostgreSQLFile


class Migration(migrations.Migration):
    """The callback's writer on PostgreSQL becomes a function defined by a .sql file; records at
    the server's time take their milliseconds from the bucket's clock, not the device's."""

    dependencies = [
        ('devices', '0004_device_last_server_ts'),
        ('buckets', '0005_record_device_and_clock'),
        ('endpoints', '0003_call_defaults_in_the_database'),
    ]

    operations = [
        migrations.RemoveField(
            model_name='device',
            name='last_server_ts',
        ),
        PostgreSQLFile(__file__, '0005_callback.sql', '0005_callback_reverse.sql'),
    ]
