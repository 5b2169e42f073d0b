"""Celery tasks for buckets: thin, each one calls a service."""

from celery import shared_task

from buckets import services, summaries


@shared_task(name="buckets.tasks.bucket_export_run")
def bucket_export_run(export_id):
    """Write one export's file; a second delivery of the same export does nothing."""
    services.bucket_export_run(export_id=export_id)


@shared_task(name="buckets.tasks.bucket_enforce_retention")
def bucket_enforce_retention():
    """Run by beat every ``BUCKET_RETENTION_INTERVAL_SECONDS``."""
    return services.bucket_enforce_retention()


@shared_task(name="buckets.tasks.bucket_exports_requeue")
def bucket_exports_requeue():
    """Run by beat: exports no worker took (or whose worker died) are sent again."""
    return services.bucket_exports_requeue()


@shared_task(name="buckets.tasks.bucket_summaries_update")
def bucket_summaries_update():
    """Run by beat every minute: summaries of the slots that ended since (buckets.summaries)."""
    return summaries.bucket_summaries_update()
