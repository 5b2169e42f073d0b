from django.db import migrations, models

from core.migration_ops import PostgreSQLFile


class Migration(migrations.Migration):
    """Records know their device (a column without a default: no rewrite of the table), and each
    bucket gets its clock (PostgreSQL: a sequence per bucket, see the .sql file)."""

    dependencies = [
        ('buckets', '0004_bucket_last_server_ts'),
    ]

    operations = [
        migrations.AddField(
            model_name='bucketrecord',
            name='device',
            field=models.CharField(blank=True, max_length=32, null=True),
        ),
        PostgreSQLFile(__file__, '0005_bucket_clock.sql', '0005_bucket_clock_reverse.sql'),
    ]
