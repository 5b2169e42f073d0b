"""The events of buckets (see ``core.events``)."""

from core.events import declare

EXPORT_COMPLETED = declare(
    "bucket_export_completed",
    "bucket",
    "file",
    ("state", ["done", "failed"]),
    description="An export of the bucket finished: its file and where to read it "
    "(its url, file://users/{user}/buckets/{bucket}/{file}).",
)
RECORDS_WRITE = declare(
    "bucket_records_write",
    "bucket",
    "device",
    "records",
    description="Records were stored in the bucket: how many, and the device whose callback "
    "stored them (none when the API did).",
)
