"""The buckets part of the REST API (SPEC section 4), wire-compatible with Thinger.io's.

Every success is exactly 200: JSON, or empty for writes, clears and deletes. Request bodies are
checked against the reference's schemas, ``additionalProperties: false`` included: each violation
is a 400 naming the field.
"""

import json
import math
import re

from django.http import FileResponse, Http404, QueryDict
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, serializers

from buckets import aggregates, selectors, services
from buckets.exports import CONTENT_TYPES
from buckets.models import Bucket, BucketExport
from core.api import (
    PAGE_PARAMETERS,
    AssetDetailView,
    AssetListView,
    AssetView,
    int_param,
    ok,
    page,
    validated,
)
from core.api_fields import (
    ClosedSerializer,
    IdentifierField,
    StrictBooleanField,
    StrictCharField,
    StrictIntegerField,
)
from core.times import to_ms


class _TimestampField(serializers.FloatField):
    """A JSON number of milliseconds (``minimum: 0``); 0 or null leave that end open."""

    def __init__(self, **kwargs):
        super().__init__(min_value=0, required=False, allow_null=True, **kwargs)

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int | float) or not math.isfinite(data):
            self.fail("invalid")
        super().to_internal_value(data)
        return min(int(data), services.MAX_TS) or None

    def run_validators(self, value):
        if value is not None:
            super().run_validators(value)


# The reference's bucket_config variants; only "api" is implemented here.
_OTHER_SOURCES = ("write", "device", "mqtt")


class BucketConfigSerializer(ClosedSerializer):
    source = serializers.ChoiceField(choices=["api"])
    tags = serializers.ListField(child=IdentifierField(), max_length=5, required=False)

    def to_internal_value(self, data):
        source = data.get("source") if isinstance(data, dict) else None
        if source in _OTHER_SOURCES:
            raise exceptions.ValidationError(
                {"source": [f'source "{source}" is not supported here: only "api"']}
            )
        if isinstance(data, dict) and "source" not in data:
            raise exceptions.ValidationError({"source": ["this field is required"]})
        return super().to_internal_value(data)


class BucketRetentionSerializer(serializers.Serializer):
    period = StrictIntegerField(min_value=0, max_value=2**31 - 1, required=False, allow_null=True)
    unit = serializers.ChoiceField(choices=Bucket.RetentionUnit.values, required=False)


class BucketCreateInput(ClosedSerializer):
    bucket = IdentifierField()
    name = StrictCharField(max_length=255, allow_blank=True)
    description = StrictCharField(max_length=255, allow_blank=True, required=False)
    enabled = StrictBooleanField()
    config = BucketConfigSerializer()
    retention = BucketRetentionSerializer(required=False)
    # Accepted as the reference allows, and not kept: this server has no asset types, groups or
    # products, and one storage backend.
    asset_group = IdentifierField(required=False)
    asset_type = IdentifierField(required=False)
    product = IdentifierField(required=False)
    backend = serializers.ChoiceField(
        choices=["", "mongodb", "influxdb", "dynamodb"], required=False, allow_blank=True
    )


class BucketUpdateInput(BucketCreateInput):
    # Not in the reference's update schema, but in its "Full Update" example: the path's id only.
    bucket = IdentifierField(required=False)
    asset_group = IdentifierField(required=False, allow_blank=True)
    asset_type = IdentifierField(required=False, allow_blank=True)
    product = IdentifierField(required=False, allow_blank=True)


def _bucket_fields(data):
    """Model fields from validated input (create or partial update)."""
    fields = {name: data[name] for name in ("name", "description", "enabled") if name in data}
    if "config" in data:
        fields["tags"] = data["config"].get("tags", [])
    retention = data.get("retention", {})
    if "period" in retention:
        fields["retention_period"] = retention["period"]
    if "unit" in retention:
        fields["retention_unit"] = retention["unit"]
    return fields


# Outputs.


class BucketConfigOutput(serializers.Serializer):
    source = serializers.CharField()
    tags = serializers.ListField(child=serializers.CharField(), required=False)


class BucketRetentionOutput(serializers.Serializer):
    period = serializers.IntegerField(help_text="0: records are kept forever")
    unit = serializers.ChoiceField(choices=Bucket.RetentionUnit.values)


class BucketOutput(serializers.Serializer):
    bucket = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    enabled = serializers.BooleanField()
    config = BucketConfigOutput()
    retention = BucketRetentionOutput()
    created = serializers.IntegerField()
    modified = serializers.IntegerField()


def bucket_out(bucket):
    config = {"source": bucket.source}
    if bucket.tags:
        config["tags"] = bucket.tags
    return {
        "bucket": bucket.identifier,
        "name": bucket.name,
        "description": bucket.description,
        "enabled": bucket.enabled,
        "config": config,
        "retention": {"period": bucket.retention_period or 0, "unit": bucket.retention_unit},
        "created": to_ms(bucket.created),
        "modified": to_ms(bucket.modified),
    }


class RecordOutput(serializers.Serializer):
    ts = serializers.IntegerField(help_text="milliseconds since the Unix epoch")
    val = serializers.JSONField()
    device = serializers.CharField(
        required=False, help_text="the device whose callback wrote it; absent for the API's writes"
    )


class ExportInput(ClosedSerializer):
    data_type = serializers.ChoiceField(choices=BucketExport.DataType.values, required=False)
    timestamp_format = serializers.ChoiceField(
        choices=BucketExport.TimestampFormat.values, required=False
    )
    min_ts = _TimestampField()
    max_ts = _TimestampField()
    callback = serializers.ChoiceField(choices=["email", "endpoint"], required=False)
    endpoint = IdentifierField(required=False)

    def validate_callback(self, value):
        raise serializers.ValidationError(
            "notifying when an export is ready is not supported: poll GET .../exports"
        )

    def validate(self, attrs):
        low, high = attrs.get("min_ts"), attrs.get("max_ts")
        if low is not None and high is not None and low > high:
            raise serializers.ValidationError({"min_ts": "must not be after max_ts"})
        return attrs


class ExportCreatedOutput(serializers.Serializer):
    file = serializers.CharField()
    state = serializers.ChoiceField(choices=BucketExport.State.values)


class ExportOutput(serializers.Serializer):
    file = serializers.CharField()
    data_type = serializers.ChoiceField(choices=BucketExport.DataType.values)
    timestamp_format = serializers.ChoiceField(choices=BucketExport.TimestampFormat.values)
    min_ts = serializers.IntegerField(allow_null=True)
    max_ts = serializers.IntegerField(allow_null=True)
    state = serializers.ChoiceField(choices=BucketExport.State.values)
    progress = serializers.IntegerField(help_text="percent")
    rows = serializers.IntegerField()
    size = serializers.IntegerField(help_text="bytes")
    failure = serializers.CharField(help_text="why the export failed; empty unless it did")
    created = serializers.IntegerField()
    finished = serializers.IntegerField(allow_null=True)


def export_out(export):
    return {
        "file": export.file,
        "data_type": export.data_type,
        "timestamp_format": export.timestamp_format,
        "min_ts": export.min_ts,
        "max_ts": export.max_ts,
        "state": export.state,
        "progress": export.progress,
        "rows": export.rows,
        "size": export.size,
        "failure": export.error,
        "created": to_ms(export.created),
        "finished": to_ms(export.finished),
    }


def _ts_param(request, name):
    """``min_ts``/``max_ts``: milliseconds (a decimal point is tolerated); empty is absent."""
    raw = request.query_params.get(name, "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise exceptions.ValidationError(
                {name: "must be milliseconds since the epoch"}
            ) from None
        value = int(value)
    return max(-services.MAX_TS, min(value, services.MAX_TS))


READ_PARAMETERS = [
    OpenApiParameter(
        "items",
        int,
        description=f"records per page, at most {selectors.READ_MAX_ITEMS} (the default)",
    ),
    OpenApiParameter("min_ts", int, description="oldest timestamp (ms), inclusive"),
    OpenApiParameter("max_ts", int, description="newest timestamp (ms), inclusive"),
    OpenApiParameter("sort", str, enum=["asc", "desc"], description="by ts; default desc"),
    OpenApiParameter("device", str, description="only the records this device's callback wrote"),
    OpenApiParameter(
        "agg",
        str,
        description="one record per interval (`30s`, `1m`, `5m`, `15m`, `1h`, `1d`, `1w`...: a "
        "number and s, m, h, d or w; UTC, weeks from Monday) holding the aggregate of each "
        "numeric field, nested ones by their dotted path; `items` then counts intervals",
    ),
    OpenApiParameter(
        "agg_type", str, enum=list(aggregates.AGG_TYPES), description="with `agg`; default mean"
    ),
]

_AGG = re.compile(r"(\d{1,6})([smhdw])")
_UNIT_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


def interval_ms(text):
    """An interval as ``agg`` writes it (a number and s, m, h, d or w: ``30s``, ``5m``, ``1h``,
    ``1d``, ``1w``) in milliseconds; None when ``text`` is not one (dashboards read theirs so)."""
    match = _AGG.fullmatch(text) if isinstance(text, str) else None
    if match is None or int(match[1]) == 0:
        return None
    return int(match[1]) * _UNIT_MS[match[2]]


def _agg_param(request):
    """``agg`` as milliseconds, or None; ``agg=`` is absent (clients send it empty)."""
    raw = request.query_params.get("agg", "").strip()
    if not raw:
        return None
    step = interval_ms(raw)
    if step is None:
        raise exceptions.ValidationError(
            {"agg": "must be an interval such as 1m, 5m, 15m, 1h, 1d or 1w"}
        )
    return step


def read_records(request, bucket):
    """The records a read asks for, or with ``agg`` their aggregates per interval; empty
    parameters and unknown ones (tz...) are ignored."""
    limit = selectors.READ_MAX_ITEMS
    items = int_param(request, "items", limit, minimum=1, maximum=limit)
    sort = request.query_params.get("sort", "").strip().lower() or "desc"
    if sort not in ("asc", "desc"):
        raise exceptions.ValidationError({"sort": "must be asc or desc"})
    scope = {
        "bucket": bucket,
        "items": items,
        "min_ts": _ts_param(request, "min_ts"),
        "max_ts": _ts_param(request, "max_ts"),
        "sort": sort,
        "device": request.query_params.get("device", "").strip() or None,
    }
    step = _agg_param(request)
    if step is None:
        return selectors.bucket_read(**scope)
    agg_type = request.query_params.get("agg_type", "").strip().lower() or "mean"
    if agg_type not in aggregates.AGG_TYPES:
        raise exceptions.ValidationError(
            {"agg_type": f"must be one of {', '.join(aggregates.AGG_TYPES)}"}
        )
    return aggregates.bucket_aggregate(step_ms=step, agg_type=agg_type, **scope)


class _BucketView(AssetView):
    asset = resource_kwarg = "bucket"
    out = staticmethod(bucket_out)

    def find(self, **path):
        return selectors.bucket_by_path(**path)


@extend_schema_view(
    post=extend_schema(
        request=BucketCreateInput,
        responses={200: BucketOutput},
        operation_id="Bucket_Create",
    )
)
class BucketListView(AssetListView, _BucketView):
    actions = {"GET": ("Bucket", "ListBuckets"), "POST": ("Bucket", "CreateBucket")}
    create_input = BucketCreateInput

    @extend_schema(
        parameters=[
            *PAGE_PARAMETERS,
            OpenApiParameter("name", str, description="part of the id or the name"),
        ],
        responses={200: BucketOutput(many=True)},
        operation_id="Bucket_List",
    )
    def get(self, request, user):
        owner = self.path_owner()
        rows = selectors.buckets_of(
            username=owner.username, name=request.query_params.get("name", "").strip()
        )
        return ok([bucket_out(bucket) for bucket in page(request, rows)])

    def create(self, owner, identifier, data):
        return services.bucket_create(owner=owner, identifier=identifier, **_bucket_fields(data))


@extend_schema_view(
    get=extend_schema(responses={200: BucketOutput}, operation_id="Bucket_ReadConfig"),
    put=extend_schema(
        request=BucketUpdateInput,
        responses={200: BucketOutput},
        operation_id="Bucket_Update",
        description="A partial update: absent fields keep their values.",
    ),
    delete=extend_schema(
        responses={200: None},
        operation_id="Bucket_Delete",
        description="Deletes the bucket, its records and exports; device callbacks writing to it "
        "stop writing.",
    ),
)
class BucketDetailView(AssetDetailView, _BucketView):
    actions = {
        "GET": ("Bucket", "ReadBucketConfig"),
        "PUT": ("Bucket", "UpdateBucket"),
        "DELETE": ("Bucket", "DeleteBucket"),
    }
    update_input = BucketUpdateInput

    def update(self, bucket, data):
        services.bucket_update(bucket=bucket, **_bucket_fields(data))

    def remove(self, bucket):
        services.bucket_delete(bucket=bucket)


class BucketDataView(_BucketView):
    """``/v1/users/{user}/buckets/{bucket}/data``: read (documented with the versioned path),
    write and clear."""

    actions = {
        "GET": ("Bucket", "ReadBucket"),
        "POST": ("Bucket", "WriteBucket"),
        "DELETE": ("Bucket", "ClearBucket"),
    }

    @extend_schema(exclude=True)
    def get(self, request, user, bucket):
        return ok(read_records(request, self.found()))

    @extend_schema(
        request={
            "application/json": {
                "oneOf": [
                    {"type": "object"},
                    {"type": "array", "items": {"type": "object"}},
                ]
            }
        },
        responses={200: None},
        operation_id="Bucket_WriteData",
        description="One record per object. A numeric top-level `ts` (ms) is the record's time "
        "and is removed from it (a record with the same ts is replaced); other records get the "
        "server's time. A disabled bucket stores nothing.",
    )
    def post(self, request, user, bucket):
        found = self.found()
        data = request.data
        values = [data] if isinstance(data, dict) else data
        if isinstance(data, QueryDict) or not isinstance(values, list):
            raise exceptions.ValidationError("the body must be a JSON object or array of objects")
        if not all(isinstance(value, dict) for value in values):
            raise exceptions.ValidationError("the body must be a JSON object or array of objects")
        try:
            json.dumps(values, allow_nan=False)
        except ValueError:  # 1e400 parses as infinity, which JSON cannot store
            raise exceptions.ValidationError("a number in the body is too large") from None
        try:
            services.bucket_write(bucket=found, values=values)
        except ValueError as exc:
            raise exceptions.ValidationError({"ts": str(exc)}) from None
        return ok()

    @extend_schema(
        parameters=[
            OpenApiParameter("min_ts", int, description="oldest timestamp (ms), inclusive"),
            OpenApiParameter("max_ts", int, description="newest timestamp (ms), inclusive"),
        ],
        responses={200: None},
        operation_id="Bucket_ClearData",
        description="Deletes the bucket's records: all of them, or those within min_ts..max_ts.",
    )
    def delete(self, request, user, bucket):
        services.bucket_clear(
            self.found(), min_ts=_ts_param(request, "min_ts"), max_ts=_ts_param(request, "max_ts")
        )
        return ok()


_VERSION = OpenApiParameter("version", str, OpenApiParameter.PATH, enum=["v1", "v2"])


class BucketReadView(_BucketView):
    """``/{version}/users/{user}/buckets/{bucket}/data``, version v1 or v2."""

    actions = {"GET": ("Bucket", "ReadBucket")}

    @extend_schema(
        parameters=[_VERSION, *READ_PARAMETERS],
        responses={200: RecordOutput(many=True)},
        operation_id="Bucket_ReadData",
        description="Page by moving max_ts (descending) or min_ts (ascending) past the last "
        "record's ts; a page shorter than `items` is the last.",
    )
    def get(self, request, version, user, bucket):
        return ok(read_records(request, self.found()))


class BucketExportListView(_BucketView):
    actions = {
        "GET": ("Bucket", "ListBucketExports"),
        "POST": ("Bucket", "CreateBucketExport"),
    }

    @extend_schema(responses={200: ExportOutput(many=True)}, operation_id="Bucket_ListExports")
    def get(self, request, user, bucket):
        return ok([export_out(export) for export in selectors.bucket_exports(bucket=self.found())])

    @extend_schema(
        request=ExportInput,
        responses={200: ExportCreatedOutput},
        operation_id="Bucket_CreateExport",
        description="A worker writes the file (csv by default, iso timestamps); follow its state "
        "and progress with GET .../exports. min_ts/max_ts of 0 or absent leave that end open.",
    )
    def post(self, request, user, bucket):
        found = self.found()
        data = validated(ExportInput, request.data)
        export = services.bucket_export_create(
            bucket=found,
            data_type=data.get("data_type", BucketExport.DataType.CSV),
            timestamp_format=data.get("timestamp_format", BucketExport.TimestampFormat.ISO),
            min_ts=data.get("min_ts"),
            max_ts=data.get("max_ts"),
        )
        return ok({"file": export.file, "state": export.state})


class BucketExportDetailView(_BucketView):
    """One export: download its file, or delete it.

    Downloading an export that is not done (pending, running or failed) is a 404 whose message
    gives its state; the list (GET .../exports) shows state and progress.
    """

    actions = {
        "GET": ("Bucket", "ReadBucketExport"),
        "DELETE": ("Bucket", "DeleteBucketExport"),
    }

    def perform_content_negotiation(self, request, force=False):
        # Whatever the Accept header says, the answer is the file (or a JSON error).
        return super().perform_content_negotiation(request, force=True)

    def export(self):
        export = selectors.bucket_export_by_file(bucket=self.found(), file=self.kwargs["file"])
        if export is None:
            raise Http404(f"export {self.kwargs['file']!r} not found")
        return export

    @extend_schema(
        responses={
            (200, "text/csv"): OpenApiTypes.BINARY,
            (200, "application/json"): OpenApiTypes.BINARY,
            (200, "text/x-arff"): OpenApiTypes.BINARY,
        },
        operation_id="Bucket_ReadExport",
        description="The file, as an attachment; 404 while the export is pending or running, "
        "or when it failed.",
    )
    def get(self, request, user, bucket, file):
        export = self.export()
        if export.state != BucketExport.State.DONE:
            detail = f": {export.error}" if export.error else ""
            raise Http404(f"export {export.file!r} is {export.state}{detail}")
        try:
            handle = services.export_open(export)
        except FileNotFoundError:
            raise Http404(f"the file of export {export.file!r} is missing") from None
        return FileResponse(
            handle,
            as_attachment=True,
            filename=export.file,
            content_type=CONTENT_TYPES[export.data_type],
        )

    @extend_schema(
        responses={200: None},
        operation_id="Bucket_DeleteExport",
        description="Deletes the export and its file; a running export stops.",
    )
    def delete(self, request, user, bucket, file):
        services.bucket_export_delete(export=self.export())
        return ok()
