"""Console pages for data buckets: list, create, edit, delete, and a bucket's page with its
latest records, a chart (of the records, or of their means per interval over a long range:
``buckets.aggregates.bucket_chart`` decides), exports with their progress, and clearing."""

import json
from datetime import UTC, datetime

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db.models import OuterRef, Subquery
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from buckets import selectors, services
from buckets.aggregates import CHART_INTERVALS, CHART_RECORDS, bucket_chart
from buckets.exports import CONTENT_TYPES
from buckets.forms import CHART_RANGES, BucketForm, ChartRangeForm, ClearForm, ExportForm
from buckets.models import Bucket, BucketExport, BucketRecord
from buckets.selectors import (
    bucket_export_by_file,
    bucket_exports,
    bucket_read,
    bucket_records,
    buckets_of,
)
from core.console import (
    ObjectDeleteView,
    ObjectEditView,
    kept_form,
    owned_or_404,
    paginate,
    redirect_with_form,
)

SECTION = "buckets"
RECORDS_PER_PAGE = 25
CHART_LATEST = 200
CHART_NESTING = 4  # levels of nested objects whose numbers are charted
CHART_MAX_SERIES = 8
EXPORTS_SHOWN = 10


def _bucket(request, identifier):
    return owned_or_404(Bucket.objects.select_related("owner"), request.user, identifier=identifier)


def ms_to_datetime(ts):
    try:
        return datetime.fromtimestamp(ts / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


@login_required
def bucket_list(request):
    latest = BucketRecord.objects.filter(bucket=OuterRef("pk")).order_by("-ts").values("ts")[:1]
    buckets = buckets_of(username=request.user.username).annotate(latest_ts=Subquery(latest))
    page = paginate(request, buckets, 50)
    for bucket in page:
        bucket.latest_at = ms_to_datetime(bucket.latest_ts) if bucket.latest_ts else None
    return render(request, "console/buckets/list.html", {"section": SECTION, "page": page})


class _BucketPage:
    section = SECTION
    url_kwarg = "bucket"

    def find(self, identifier):
        return _bucket(self.request, identifier)


class BucketEditView(_BucketPage, ObjectEditView):
    template_name = "console/buckets/form.html"
    context_object_name = "bucket"
    form_class = BucketForm
    created_message = "Bucket {obj.identifier} created."
    saved_message = "Bucket {obj.identifier} saved."
    return_url_name = "console-bucket"

    def initial(self, obj):
        return {
            "name": obj.name,
            "description": obj.description,
            "enabled": obj.enabled,
            "retention_period": obj.retention_period,
            "retention_unit": obj.retention_unit,
        }

    def save(self, obj, form):
        if obj is None:
            return services.bucket_create(owner=self.request.user, **form.cleaned_data)
        return services.bucket_update(bucket=obj, **form.cleaned_data)


class BucketDeleteView(_BucketPage, ObjectDeleteView):
    deleted_message = "Bucket {obj.identifier} deleted with its records."
    return_url_name = "console-bucket-list"

    def delete_object(self, obj):
        services.bucket_delete(bucket=obj)


# Records as columns.

RECORD_COLUMNS_MAX = 12  # more keys than this on a page: one Value column of JSON
RECORD_COUNT_LIMIT = 100_000  # the records are counted up to this many, no further


def _is_flat(value):
    """An object whose every value is text, a number, true, false or null."""
    return isinstance(value, dict) and not any(isinstance(v, dict | list) for v in value.values())


def _cell(fields, key):
    """A record's field as a table cell shows it: text as it is, other values as JSON."""
    if key not in fields:
        return {"label": key, "text": "", "kind": "missing"}
    value = fields[key]
    if isinstance(value, str):
        return {"label": key, "text": value, "kind": "text"}
    kind = "number" if isinstance(value, int | float) and not isinstance(value, bool) else "json"
    return {"label": key, "text": json.dumps(value), "kind": kind}


def _record_columns(records):
    """The records table's columns: the keys of the page's records that are flat objects,
    sorted as the exports' columns are; each such record gets its ``cells``, the others show
    their JSON across the columns. None (one Value column) when no record is flat, or when they
    have more than RECORD_COLUMNS_MAX keys between them."""
    keys = sorted(
        {key for record in records if record["fields"] is not None for key in record["fields"]}
    )
    if not keys or len(keys) > RECORD_COLUMNS_MAX:
        return None
    for record in records:
        if record["fields"] is not None:
            record["cells"] = [_cell(record["fields"], key) for key in keys]
    return keys


def _record_total(bucket):
    """The bucket's number of records as the page says it (counted up to RECORD_COUNT_LIMIT)."""
    count = selectors.bucket_record_count(bucket=bucket, limit=RECORD_COUNT_LIMIT)
    if count > RECORD_COUNT_LIMIT:
        return f"More than {RECORD_COUNT_LIMIT:,} records"
    return f"{count:,} record{'s' if count != 1 else ''}"


def _records_page(bucket, before):
    """A page of records, newest first, older than ``before`` (ms) when given, and the ``ts`` to
    ask for the next (older) page, or None."""
    max_ts = before - 1 if before is not None else None
    rows = list(bucket_records(bucket=bucket, items=RECORDS_PER_PAGE + 1, max_ts=max_ts))
    older = rows[RECORDS_PER_PAGE - 1][0] if len(rows) > RECORDS_PER_PAGE else None
    records = [
        {
            "ts": ts,
            "at": ms_to_datetime(ts),
            "value": json.dumps(value, ensure_ascii=False),
            "device": device,
            "fields": value if _is_flat(value) else None,
        }
        for ts, value, device in rows[:RECORDS_PER_PAGE]
    ]
    return records, older


def _numbers(value, path="", depth=0):
    """(dotted path, number) of each numeric field of a record, nested ones too (as the API's
    ``agg`` names them); a record that is a bare number is ``value``."""
    if isinstance(value, dict):
        if depth < CHART_NESTING:
            for key, item in value.items():
                yield from _numbers(item, f"{path}.{key}" if path else str(key), depth + 1)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield path or "value", value


def _chart(bucket, range_form):
    """Series of the numeric fields, nested ones too (or numeric values) of the latest records,
    or of the records in the chosen range, or of their means per interval when it holds many."""
    min_ts, max_ts = range_form.bounds()
    if min_ts is None:
        step, rows = None, bucket_read(bucket=bucket, items=CHART_LATEST)[::-1]
    else:
        step, rows = bucket_chart(bucket=bucket, min_ts=min_ts, max_ts=max_ts)
    series = {}
    for row in rows:
        value = row["val"]
        # Means come with their nested fields' dotted paths already; records are walked for them.
        fields = value.items() if step is not None and isinstance(value, dict) else None
        for key, item in fields or _numbers(value):
            if isinstance(item, bool) or not isinstance(item, int | float):
                continue
            key = key or "value"  # the means of records that are bare numbers
            if key not in series and len(series) >= CHART_MAX_SERIES:
                continue
            series.setdefault(key, []).append([row["ts"], item])
    return {
        "series": [{"label": key, "points": points} for key, points in sorted(series.items())],
        # The chosen range, which the chart draws whole; None for the latest records.
        "bounds": [min_ts, max_ts] if min_ts is not None else None,
        "first": rows[0]["ts"] if rows else None,
        "span": rows[-1]["ts"] - rows[0]["ts"] if rows else 0,
        "points": len(rows),
        # Records drawn as they are; None when the chart draws their means.
        "records": len(rows) if step is None else None,
        # What the chart calls the interval its means are over ("hourly"), None for records.
        "interval": CHART_INTERVALS[step] if step else None,
    }


def _parse_before(request):
    try:
        return int(request.GET["before"])
    except (KeyError, ValueError):
        return None


@login_required
def bucket_detail(request, bucket):
    bucket = _bucket(request, bucket)
    before = _parse_before(request)
    records, older = _records_page(bucket, before)
    range_form = ChartRangeForm(request.GET or None, initial={"range": "latest"})
    chart = _chart(bucket, range_form)
    range_key = range_form.cleaned_data.get("range") if range_form.is_valid() else ""
    exports = list(bucket_exports(bucket=bucket)[:EXPORTS_SHOWN])
    # A clear form kept valid is one to confirm (bucket_clear).
    clear_form = kept_form(request, ClearForm) or ClearForm()
    context = {
        "section": SECTION,
        "bucket": bucket,
        "records": records,
        "record_columns": _record_columns(records),
        "record_total": _record_total(bucket),
        "before": before,
        "older": older,
        "range_form": range_form,
        "range_label": CHART_RANGES[range_key or "latest"][0],
        "range_key": range_key or "latest",
        "chart": chart,
        "chart_records": f"{CHART_RECORDS:,}",
        "exports": [_export_row(bucket, export) for export in exports],
        "export_form": kept_form(request, ExportForm) or ExportForm(),
        "clear_form": clear_form,
        "confirm_clear": clear_form.is_bound and clear_form.is_valid(),
        "timezone_name": timezone.get_current_timezone_name(),
    }
    return render(request, "console/buckets/detail.html", context)


# Exports.


def _export_row(bucket, export):
    running = export.state in (BucketExport.State.PENDING, BucketExport.State.RUNNING)
    return {
        "export": export,
        "running": running,
        "progress_url": reverse(
            "console-bucket-export-progress", args=[bucket.identifier, export.file]
        ),
        "download_url": reverse(
            "console-bucket-export-download", args=[bucket.identifier, export.file]
        ),
        "delete_url": reverse(
            "console-bucket-export-delete", args=[bucket.identifier, export.file]
        ),
    }


@login_required
@require_POST
def bucket_export_create(request, bucket):
    bucket = _bucket(request, bucket)
    back = reverse("console-bucket", args=[bucket.identifier]) + "#exports"
    form = ExportForm(request.POST)
    if not form.is_valid():
        return redirect_with_form(request, form, back)
    min_ts, max_ts = form.bounds()
    try:
        export = services.bucket_export_create(
            bucket=bucket,
            data_type=form.cleaned_data["data_type"],
            timestamp_format=form.cleaned_data["timestamp_format"],
            min_ts=min_ts,
            max_ts=max_ts,
        )
    except ValidationError as exc:
        messages.error(request, "The export was not started: " + " ".join(exc.messages))
        return redirect_with_form(request, form, back)
    messages.success(request, f"Export {export.file} started: it appears below when it is ready.")
    return redirect(back)


def _export(bucket, file):
    export = bucket_export_by_file(bucket=bucket, file=file)
    if export is None:
        raise Http404("No such export.")
    return export


@login_required
def bucket_export_progress(request, bucket, file):
    """The export's state and its table row, for the progress bar to follow."""
    bucket = _bucket(request, bucket)
    export = _export(bucket, file)
    row = render_to_string(
        "console/buckets/_export_row.html", {"row": _export_row(bucket, export)}, request=request
    )
    return JsonResponse({**selectors.bucket_export_progress(export), "row": row.strip()})


@login_required
def bucket_export_download(request, bucket, file):
    bucket = _bucket(request, bucket)
    export = _export(bucket, file)
    if export.state != BucketExport.State.DONE:
        raise Http404("This export is not ready.")
    try:
        handle = services.export_open(export)
    except FileNotFoundError:
        raise Http404("The export's file is missing.") from None
    return FileResponse(
        handle,
        as_attachment=True,
        filename=export.file,
        content_type=CONTENT_TYPES[export.data_type],
    )


@login_required
@require_POST
def bucket_export_delete(request, bucket, file):
    bucket = _bucket(request, bucket)
    export = _export(bucket, file)
    services.bucket_export_delete(export=export)
    messages.success(request, f"Export {export.file} deleted.")
    return redirect(reverse("console-bucket", args=[bucket.identifier]) + "#exports")


# Clear.


@login_required
@require_POST
def bucket_clear(request, bucket):
    """Two steps: the range is checked first, and the bucket's page shows its errors or asks to
    confirm (``confirm_clear``); the confirmation posts the same range with ``confirmed``."""
    bucket = _bucket(request, bucket)
    form = ClearForm(request.POST)
    if not form.is_valid() or not request.POST.get("confirmed"):
        return redirect_with_form(
            request, form, reverse("console-bucket", args=[bucket.identifier]) + "#clear"
        )
    min_ts, max_ts = form.bounds()
    deleted = services.bucket_clear(bucket, min_ts, max_ts)
    scope = "" if min_ts is None and max_ts is None else " in that range"
    messages.success(
        request, f"{deleted:,} record{'s' if deleted != 1 else ''}{scope} deleted from the bucket."
    )
    return redirect("console-bucket", bucket.identifier)
