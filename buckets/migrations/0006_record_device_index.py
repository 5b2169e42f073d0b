from django.db import migrations, models

from core.migration_ops import AddIndexConcurrently


class Migration(migrations.Migration):
    """The index of one device's records, built concurrently on PostgreSQL: a bucket of millions
    of records keeps taking writes meanwhile."""

    atomic = False

    dependencies = [
        ('buckets', '0005_record_device_and_clock'),
    ]

    operations = [
        AddIndexConcurrently(
            model_name='bucketrecord',
            index=models.Index(
                condition=models.Q(('device__isnull', False)),
                fields=['bucket', 'device', 'ts'],
                name='bucket_record_device_ts',
            ),
        ),
    ]
