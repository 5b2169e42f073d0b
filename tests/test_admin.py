"""The Django admin for staff: every page loads, no page does a query per row, actions act and
the callback settings inline keeps references within the device's owner."""

import html
import json

import pytest
from django.apps import apps
from django.contrib import admin
from django.core.files.base import ContentFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

import endpoints.admin
from buckets.models import Bucket, BucketExport, BucketRecord, BucketSummary, BucketSummaryMark
from buckets.services import export_name, export_storage
from dashboards.models import Dashboard
from devices.models import (
    AlertSettings,
    AlertState,
    CallbackActivity,
    CallbackSettings,
    ConnectionEvent,
    Device,
    DeviceDailyStats,
    Property,
)
from devices.tokens import callback_token_for
from endpoints.models import Endpoint, EndpointAttempt, EndpointCall
from tests.factories import (
    BucketFactory,
    BucketRecordFactory,
    ConnectionEventFactory,
    DashboardFactory,
    DeviceDailyStatsFactory,
    DeviceFactory,
    EndpointCallFactory,
    EndpointFactory,
    PropertyFactory,
    UserFactory,
    callback_configure,
)

pytestmark = pytest.mark.django_db

OUR_APPS = ("devices", "buckets", "endpoints", "dashboards")


def _make_callback_settings():
    device = DeviceFactory()
    return callback_configure(
        device,
        write_bucket=BucketFactory(owner=device.owner),
        set_property=PropertyFactory(device=device),
        call_endpoint=EndpointFactory(owner=device.owner),
        send_property=PropertyFactory(device=device),
    )


def _make_endpoint_attempt():
    call = EndpointCallFactory(status=EndpointCall.Status.FAILED, attempts=1)
    return EndpointAttempt.objects.create(
        call=call, started_at=timezone.now(), duration_ms=12, error="connection refused"
    )


def _make_bucket_export():
    record = BucketRecordFactory()
    return BucketExport.objects.create(
        bucket=record.bucket, file=f"export-{record.pk}.csv", state=BucketExport.State.DONE
    )


# One row of each model, as the changelist shows it (with every reference filled in).
MAKERS = {
    Device: lambda: DeviceFactory(remote_ip="192.0.2.1"),
    CallbackSettings: _make_callback_settings,
    Property: lambda: PropertyFactory(value={"led": "on"}),
    DeviceDailyStats: DeviceDailyStatsFactory,
    ConnectionEvent: ConnectionEventFactory,
    Bucket: lambda: BucketRecordFactory().bucket,
    BucketRecord: BucketRecordFactory,
    BucketExport: _make_bucket_export,
    BucketSummary: lambda: BucketSummary.objects.create(
        bucket=BucketFactory(), slot=1_700_000_100_000, path="t", numbers=2, total=3.5
    ),
    BucketSummaryMark: lambda: BucketSummaryMark.objects.create(
        bucket=BucketFactory(), since=1_700_000_100_000, until=1_700_000_400_000
    ),
    Endpoint: EndpointFactory,
    EndpointCall: lambda: EndpointCallFactory(
        status=EndpointCall.Status.FAILED, last_error="connection refused"
    ),
    EndpointAttempt: _make_endpoint_attempt,
    AlertSettings: lambda: AlertSettings.objects.create(
        device=DeviceFactory(), owner=UserFactory()
    ),
    AlertState: lambda: AlertState.objects.create(device=DeviceFactory(), told="connected"),
    CallbackActivity: lambda: CallbackActivity.objects.create(
        device=DeviceFactory(),
        status=401,
        reason="invalid token",
        first_at=timezone.now(),
        last_at=timezone.now(),
    ),
    Dashboard: lambda: DashboardFactory(
        widgets=[{"id": "w", "type": "text", "source": {"kind": "bucket", "bucket": "gone"}}]
    ),
}


def _url(model, view, *args):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def _form_data(response):
    """The POST data of an admin change form as rendered: the form, then each inline formset."""
    data = {}

    def add(form):
        for field in form:
            value = field.value()
            if value is None or value is False:
                continue
            data[field.html_name] = "on" if value is True else value

    add(response.context["adminform"].form)
    for inline in response.context["inline_admin_formsets"]:
        add(inline.formset.management_form)
        for form in inline.formset.forms:
            add(form)
    return data


def test_every_model_of_our_apps_is_registered():
    models = {model for app in OUR_APPS for model in apps.get_app_config(app).get_models()}

    assert models == {model for model in models if admin.site.is_registered(model)}
    assert set(MAKERS) == models


@pytest.mark.parametrize("model", list(MAKERS), ids=lambda model: model.__name__)
def test_changelist_and_change_pages_load(admin_client, model):
    obj = MAKERS[model]()

    changelist = admin_client.get(_url(model, "changelist"))
    change = admin_client.get(_url(model, "change", obj.pk))

    assert changelist.status_code == 200
    assert change.status_code == 200
    assert str(obj) in changelist.content.decode()


@pytest.mark.parametrize("model", [Device, Bucket, Endpoint, Property, Dashboard])
def test_add_page_loads(admin_client, model):
    assert admin_client.get(_url(model, "add")).status_code == 200


@pytest.mark.parametrize(
    "model",
    [
        DeviceDailyStats,
        ConnectionEvent,
        BucketRecord,
        BucketExport,
        EndpointCall,
        EndpointAttempt,
        CallbackSettings,
    ],
)
def test_rows_written_by_the_system_cannot_be_added_or_edited(admin_client, model):
    obj = MAKERS[model]()

    assert admin_client.get(_url(model, "add")).status_code == 403
    change = admin_client.get(_url(model, "change", obj.pk))
    assert change.status_code == 200
    if model is not CallbackSettings:
        assert not change.context["has_change_permission"]
        assert admin_client.post(_url(model, "change", obj.pk), {}).status_code == 403


def _changelist_queries(client, model):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(_url(model, "changelist"))
    assert response.status_code == 200
    return len(queries)


def test_device_changelist_does_not_query_per_row(admin_client):
    DeviceFactory.create_batch(3)
    with_3 = _changelist_queries(admin_client, Device)
    DeviceFactory.create_batch(27)

    assert _changelist_queries(admin_client, Device) == with_3


@pytest.mark.parametrize("model", list(MAKERS), ids=lambda model: model.__name__)
def test_changelists_do_not_query_per_row(admin_client, model):
    for _ in range(2):
        MAKERS[model]()
    with_2 = _changelist_queries(admin_client, model)
    for _ in range(8):
        MAKERS[model]()

    assert _changelist_queries(admin_client, model) == with_2


def test_device_list_shows_status(admin_client):
    DeviceFactory(identifier="live", connected=True, last_call_at="2024-01-01T00:00:00Z")
    DeviceFactory(identifier="gone", connected=False, last_call_at="2024-01-01T00:00:00Z")
    DeviceFactory(identifier="fresh")

    response = admin_client.get(_url(Device, "changelist"), {"status": "never"})

    devices = [device.identifier for device in response.context["cl"].result_list]
    assert devices == ["fresh"]
    assert "Never seen" in response.content.decode()


def test_device_search_by_owner_and_address(admin_client):
    DeviceFactory(identifier="mine", owner=UserFactory(username="alice"), remote_ip="192.0.2.7")
    DeviceFactory(identifier="theirs", owner=UserFactory(username="bob"))

    by_owner = admin_client.get(_url(Device, "changelist"), {"q": "alice"})
    by_address = admin_client.get(_url(Device, "changelist"), {"q": "192.0.2.7"})
    by_text = admin_client.get(_url(Device, "changelist"), {"q": "not-an-address"})

    assert [d.identifier for d in by_owner.context["cl"].result_list] == ["mine"]
    assert [d.identifier for d in by_address.context["cl"].result_list] == ["mine"]
    assert by_text.status_code == 200


def test_device_page_shows_callback_url_and_the_token_to_its_owner_only(admin_client, device):
    # Another user's device: its URL, not its token (tests/test_staff_secrets.py for the owner).
    response = admin_client.get(_url(Device, "change", device.pk))

    page = response.content.decode()
    assert f"/v3/users/{device.owner.username}/devices/{device.identifier}/callback/data" in page
    assert callback_token_for(device) not in page


def test_rotate_token_action_invalidates_the_old_token(admin_client, client, device):
    old_token = callback_token_for(device)
    generation = device.token_generation

    response = admin_client.post(
        _url(Device, "changelist"),
        {"action": "rotate_callback_token", admin.helpers.ACTION_CHECKBOX_NAME: [device.pk]},
        follow=True,
    )

    assert response.status_code == 200
    assert "Rotated the callback token of 1 device" in response.content.decode()
    device.refresh_from_db()
    assert device.token_generation != generation
    path = f"/v3/users/{device.owner.username}/devices/{device.identifier}/callback/data"
    old = client.post(
        path,
        {"t": 1},
        content_type="application/json",
        headers={"Authorization": f"Bearer {old_token}"},
    )
    new = client.post(
        path,
        {"t": 1},
        content_type="application/json",
        headers={"Authorization": f"Bearer {callback_token_for(device)}"},
    )
    assert old.status_code == 401
    assert new.status_code == 200


@pytest.mark.parametrize("model", [Device, Bucket, Endpoint, Dashboard])
def test_owner_and_id_are_fixed_once_created(admin_client, model):
    obj = MAKERS[model]()

    response = admin_client.get(_url(model, "change", obj.pk))

    form = response.context["adminform"].form
    assert "owner" not in form.fields
    assert "identifier" not in form.fields
    assert obj.owner.username in response.content.decode()


def test_adding_a_device_creates_its_callback_settings(admin_client):
    owner = UserFactory()
    page = admin_client.get(_url(Device, "add"))
    data = _form_data(page) | {"owner": owner.pk, "identifier": "thermostat", "name": "Hall"}

    response = admin_client.post(_url(Device, "add"), data)

    assert response.status_code == 302, response.context["errors"]
    device = Device.objects.get(owner=owner, identifier="thermostat")
    assert CallbackSettings.objects.filter(device=device, write_bucket=None).exists()


def test_adding_a_device_with_callback_settings(admin_client):
    owner = UserFactory()
    bucket = BucketFactory(owner=owner)
    page = admin_client.get(_url(Device, "add"))
    data = _form_data(page) | {
        "owner": owner.pk,
        "identifier": "thermostat",
        "callback-0-write_bucket": bucket.pk,
        "callback-0-timeout": 3,
    }

    response = admin_client.post(_url(Device, "add"), data)

    assert response.status_code == 302, response.context["errors"]
    callback = CallbackSettings.objects.get(device__identifier="thermostat")
    assert (callback.write_bucket, callback.timeout) == (bucket, 3)


def test_adding_a_duplicate_device_is_a_form_error(admin_client, device):
    page = admin_client.get(_url(Device, "add"))
    data = _form_data(page) | {"owner": device.owner.pk, "identifier": device.identifier}

    response = admin_client.post(_url(Device, "add"), data)

    assert response.status_code == 200
    assert "You already have a device with this ID." in response.content.decode()


def _post_callback(client, device, **fields):
    page = client.get(_url(Device, "change", device.pk))
    data = _form_data(page) | {f"callback-0-{name}": value for name, value in fields.items()}
    return client.post(_url(Device, "change", device.pk), data)


def test_inline_accepts_references_of_the_same_owner(admin_client, device):
    bucket = BucketFactory(owner=device.owner)
    endpoint = EndpointFactory(owner=device.owner)
    prop = PropertyFactory(device=device)

    response = _post_callback(
        admin_client,
        device,
        write_bucket=bucket.pk,
        call_endpoint=endpoint.pk,
        set_property=prop.pk,
        send_property=prop.pk,
    )

    assert response.status_code == 302, response.context["errors"]
    callback = CallbackSettings.objects.get(device=device)
    assert (callback.write_bucket, callback.call_endpoint) == (bucket, endpoint)
    assert (callback.set_property, callback.send_property) == (prop, prop)


def test_inline_rejects_a_bucket_of_another_user(admin_client, device):
    foreign = BucketFactory()

    response = _post_callback(admin_client, device, write_bucket=foreign.pk)

    assert response.status_code == 200
    callback_formset = response.context["inline_admin_formsets"][0].formset
    errors = callback_formset.forms[0].errors
    assert "belongs to another user" in errors["write_bucket"][0]
    assert CallbackSettings.objects.get(device=device).write_bucket is None


def test_inline_rejects_an_endpoint_of_another_user(admin_client, device):
    response = _post_callback(admin_client, device, call_endpoint=EndpointFactory().pk)

    assert response.status_code == 200
    assert "belongs to another user" in response.content.decode()
    assert CallbackSettings.objects.get(device=device).call_endpoint is None


@pytest.mark.parametrize("field", ["set_property", "send_property"])
def test_inline_rejects_a_property_of_another_device(admin_client, device, field):
    other = PropertyFactory(device=DeviceFactory(owner=device.owner))

    response = _post_callback(admin_client, device, **{field: other.pk})

    assert response.status_code == 200
    assert "belongs to another device" in response.content.decode()
    assert getattr(CallbackSettings.objects.get(device=device), field) is None


def test_inline_rejects_a_bucket_of_another_user_on_a_new_device(admin_client):
    owner = UserFactory()
    page = admin_client.get(_url(Device, "add"))
    data = _form_data(page) | {
        "owner": owner.pk,
        "identifier": "thermostat",
        "callback-0-write_bucket": BucketFactory().pk,
    }

    response = admin_client.post(_url(Device, "add"), data)

    assert response.status_code == 200
    assert "belongs to another user" in response.content.decode()
    assert not Device.objects.filter(identifier="thermostat").exists()


def test_callback_settings_page_rejects_a_bucket_of_another_user(admin_client, device):
    url = _url(CallbackSettings, "change", device.pk)
    data = _form_data(admin_client.get(url)) | {"write_bucket": BucketFactory().pk}

    response = admin_client.post(url, data)

    assert response.status_code == 200
    assert "belongs to another user" in response.content.decode()


def test_clear_records_action_deletes_the_records_of_selected_buckets(admin_client):
    cleared, kept = BucketFactory(), BucketFactory()
    BucketRecordFactory.create_batch(3, bucket=cleared)
    BucketRecordFactory.create_batch(2, bucket=kept)

    response = admin_client.post(
        _url(Bucket, "changelist"),
        {"action": "clear_records", admin.helpers.ACTION_CHECKBOX_NAME: [cleared.pk]},
        follow=True,
    )

    assert "Deleted 3 records of 1 bucket." in response.content.decode()
    assert not BucketRecord.objects.filter(bucket=cleared).exists()
    assert BucketRecord.objects.filter(bucket=kept).count() == 2
    assert Bucket.objects.filter(pk=cleared.pk).exists()


def test_bucket_list_shows_record_counts(admin_client):
    bucket = BucketFactory()
    BucketRecordFactory.create_batch(4, bucket=bucket)
    BucketFactory()

    response = admin_client.get(_url(Bucket, "changelist"))

    counts = {b.pk: b.record_count for b in response.context["cl"].result_list}
    assert sorted(counts.values()) == [0, 4]
    assert f"?bucket={bucket.pk}" in response.content.decode()


def test_deleting_a_bucket_counts_its_records_and_removes_export_files(
    admin_client, django_capture_on_commit_callbacks, settings, tmp_path
):
    settings.STORAGES = {
        **settings.STORAGES,
        "exports": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path)},
        },
    }
    bucket = BucketFactory()
    BucketRecordFactory.create_batch(5, bucket=bucket)
    export = BucketExport.objects.create(bucket=bucket, file="all.csv")
    name = export_storage().save(export_name(export), ContentFile(b"ts;value\n"))
    url = _url(Bucket, "delete", bucket.pk)

    confirm = admin_client.get(url)
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(url, {"post": "yes"})

    assert confirm.status_code == 200
    page = confirm.content.decode()
    assert "<li>Bucket records: 5</li>" in page
    assert "<li>Bucket exports: 1</li>" in page
    assert dict(confirm.context["model_count"]) == {
        "buckets": 1,
        "bucket records": 5,
        "bucket exports": 1,
    }
    assert response.status_code == 302
    assert not Bucket.objects.exists()
    assert not BucketRecord.objects.exists()
    assert not export_storage().exists(name)


def test_delete_selected_buckets_deletes_their_records(admin_client):
    doomed, kept = BucketFactory.create_batch(2)
    BucketRecordFactory.create_batch(3, bucket=doomed)
    BucketRecordFactory(bucket=kept)
    data = {"action": "delete_selected", admin.helpers.ACTION_CHECKBOX_NAME: [doomed.pk]}

    confirm = admin_client.post(_url(Bucket, "changelist"), data)
    response = admin_client.post(_url(Bucket, "changelist"), data | {"post": "yes"})

    assert "<li>Bucket records: 3</li>" in confirm.content.decode()
    assert response.status_code == 302
    assert list(Bucket.objects.all()) == [kept]
    assert list(BucketRecord.objects.values_list("bucket_id", flat=True)) == [kept.pk]


def test_deleting_a_device_with_history_is_allowed(admin_client):
    stats = DeviceDailyStatsFactory()
    ConnectionEventFactory(device=stats.device)
    url = _url(Device, "delete", stats.device.pk)

    confirm = admin_client.get(url)
    response = admin_client.post(url, {"post": "yes"})

    assert confirm.status_code == 200
    assert not confirm.context["perms_lacking"]
    assert response.status_code == 302
    assert not Device.objects.exists()


def test_records_filter_by_bucket(admin_client):
    bucket = BucketFactory()
    BucketRecordFactory.create_batch(2, bucket=bucket)
    BucketRecordFactory.create_batch(3)

    response = admin_client.get(_url(BucketRecord, "changelist"), {"bucket": bucket.pk})
    invalid = admin_client.get(_url(BucketRecord, "changelist"), {"bucket": "nope"})

    assert {r.bucket_id for r in response.context["cl"].result_list} == {bucket.pk}
    assert len(response.context["cl"].result_list) == 2
    assert str(bucket) in response.content.decode()
    assert invalid.status_code == 302
    assert invalid["Location"].endswith("?e=1")


def test_record_shows_a_readable_time(admin_client, settings):
    settings.TIME_ZONE = "UTC"
    BucketRecordFactory(ts=1_700_000_000_123)

    response = admin_client.get(_url(BucketRecord, "changelist"))

    assert "2023-11-14 22:13:20.123+00:00" in response.content.decode()


def test_retry_action_resets_failed_calls_and_hands_them_to_the_workers(
    admin_client, django_capture_on_commit_callbacks, monkeypatch
):
    enqueued = []
    monkeypatch.setattr(
        endpoints.admin, "endpoint_call_enqueue", lambda *, call_id: enqueued.append(call_id)
    )
    failed = EndpointCallFactory(
        status=EndpointCall.Status.FAILED, attempts=6, last_error="HTTP 503"
    )
    succeeded = EndpointCallFactory(status=EndpointCall.Status.SUCCEEDED, attempts=1)

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            _url(EndpointCall, "changelist"),
            {
                "action": "retry_failed",
                admin.helpers.ACTION_CHECKBOX_NAME: [failed.pk, succeeded.pk],
            },
            follow=True,
        )

    assert "1 failed call will be retried." in response.content.decode()
    failed.refresh_from_db()
    succeeded.refresh_from_db()
    assert (failed.status, failed.attempts) == (EndpointCall.Status.PENDING, 0)
    assert failed.next_attempt_at is not None
    assert failed.finished_at is None
    assert (succeeded.status, succeeded.attempts) == (EndpointCall.Status.SUCCEEDED, 1)
    assert enqueued == [failed.pk]


def test_endpoint_config_is_edited_as_json(admin_client):
    endpoint = EndpointFactory()
    url = _url(Endpoint, "change", endpoint.pk)
    config = {**endpoint.config, "url": "http://example.com/hook"}
    data = _form_data(admin_client.get(url)) | {"config": json.dumps(config)}

    response = admin_client.post(url, data)

    assert response.status_code == 302, response.context["errors"]
    endpoint.refresh_from_db()
    assert endpoint.config == config


def test_endpoint_config_is_checked(admin_client):
    endpoint = EndpointFactory()
    url = _url(Endpoint, "change", endpoint.pk)
    config = {**endpoint.config, "url": "ftp://example.com/"}
    data = _form_data(admin_client.get(url)) | {"config": json.dumps(config)}

    response = admin_client.post(url, data)

    assert response.status_code == 200
    assert "http:// or https://" in response.content.decode()


def test_dashboard_widgets_are_edited_as_json_and_checked_like_the_apis(admin_client):
    device = DeviceFactory(identifier="sensor1")
    other = DeviceFactory(identifier="elsewhere")
    dashboard = DashboardFactory(owner=device.owner)
    url = _url(Dashboard, "change", dashboard.pk)
    form = _form_data(admin_client.get(url))
    status = {"id": "s", "type": "device_status", "source": {"kind": "device", "device": "x"}}

    refused = admin_client.post(
        url,
        form
        | {
            "widgets": json.dumps(
                [status | {"source": {"kind": "device", "device": other.identifier}}]
            )
        },
    )
    saved = admin_client.post(
        url,
        form
        | {"widgets": json.dumps([status | {"source": {"kind": "device", "device": "sensor1"}}])},
    )

    assert refused.status_code == 200
    assert 'widgets[0].source.device: you have no device "elsewhere"' in html.unescape(
        refused.content.decode()
    )
    assert saved.status_code == 302, saved.context["errors"]
    dashboard.refresh_from_db()
    assert dashboard.widgets[0]["source"]["device"] == "sensor1"


def test_call_page_shows_its_attempts(admin_client):
    attempt = _make_endpoint_attempt()

    response = admin_client.get(_url(EndpointCall, "change", attempt.call_id))

    assert "connection refused" in response.content.decode()


@pytest.mark.parametrize("model", [Device, Bucket, BucketRecord, EndpointCall])
def test_non_staff_user_is_sent_to_the_admin_login(client, model):
    user = UserFactory()
    client.force_login(user)

    response = client.get(_url(model, "changelist"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_a_username_is_fixed_once_the_user_exists(admin_client):
    user = UserFactory(username="fixed-name")

    page = admin_client.get(f"/admin/auth/user/{user.pk}/change/")

    assert page.status_code == 200
    assert 'name="username"' not in page.content.decode()


def test_deleting_a_user_counts_records_instead_of_listing_them(admin_client):
    bucket = BucketFactory()
    BucketRecordFactory.create_batch(5, bucket=bucket)
    user = bucket.owner
    DashboardFactory.create_batch(2, owner=user)

    confirm = admin_client.get(f"/admin/auth/user/{user.pk}/delete/")
    assert confirm.status_code == 200
    assert "5 bucket records" in confirm.content.decode()
    assert "2 dashboards" in confirm.content.decode()

    done = admin_client.post(f"/admin/auth/user/{user.pk}/delete/", {"post": "yes"})
    assert done.status_code == 302
    assert not Bucket.objects.filter(pk=bucket.pk).exists()
    assert not BucketRecord.objects.exists()
    assert not Dashboard.objects.exists()


def test_access_tokens_are_managed_in_the_admin(admin_client):
    from accounts.services import access_token_create

    owner = UserFactory()
    token = access_token_create(owner=owner, identifier="gateway", name="Gateway")

    listing = admin_client.get("/admin/accounts/accesstoken/")
    change = admin_client.get(f"/admin/accounts/accesstoken/{token.pk}/change/")

    assert listing.status_code == 200 and "gateway" in listing.content.decode()
    assert change.status_code == 200


# A PostgreSQL statement takes at most 65,535 parameters. The deletes below run in batches of
# DEVICES_PER_DELETE devices, made small here: that the largest statement's parameters follow the
# batch, not the number of devices, is what keeps 66,000 devices (and any number) under the limit.
PARAMETERS_MAX = 65_535
BATCH = 20
DEVICES = 3 * BATCH + 7


@pytest.fixture
def largest_statement(monkeypatch):
    """Devices deleted ``BATCH`` at a time; ``largest_statement["parameters"]`` is the most
    parameters one of our statements ran with while ``with largest_statement["watch"]():`` is
    open (the admin's log of the deletion is Django's insert, left out)."""
    from contextlib import contextmanager

    from devices import services as device_services

    monkeypatch.setattr(device_services, "DEVICES_PER_DELETE", BATCH)
    seen = {"parameters": 0}

    def record(execute, sql, params, many, context):
        if "django_admin_log" not in sql:  # Django's own log, a row per device deleted
            seen["parameters"] = max(seen["parameters"], len(params or ()))
        return execute(sql, params, many, context)

    @contextmanager
    def watch():
        with connection.execute_wrapper(record):
            yield

    seen["watch"] = watch
    return seen


def test_the_delete_batch_keeps_each_statement_under_postgresqls_parameter_limit():
    from devices.services import DEVICES_PER_DELETE

    # A batch's ids, and the few other parameters of its statements.
    assert DEVICES_PER_DELETE + 100 < PARAMETERS_MAX


def test_staff_delete_a_user_with_more_devices_than_a_statement_takes_parameters(
    admin_client, largest_statement
):
    """Deleting the devices of a user who has many lists their ids in batches, not in one
    query: the largest statement holds a batch of ids, whatever the number of devices."""
    owner = UserFactory()
    Device.objects.bulk_create(Device(owner=owner, identifier=f"d{i}") for i in range(DEVICES))
    with largest_statement["watch"]():
        response = admin_client.post(
            reverse("admin:auth_user_delete", args=[owner.pk]), {"post": "yes"}
        )
    assert response.status_code == 302
    assert not Device.objects.filter(owner_id=owner.pk).exists()
    assert not type(owner).objects.filter(pk=owner.pk).exists()
    assert BATCH <= largest_statement["parameters"] < BATCH + 10


def test_staff_delete_more_devices_at_once_than_a_statement_takes_parameters(
    admin_client, largest_statement, monkeypatch
):
    from devices.admin import DeviceAdmin

    monkeypatch.setattr(DeviceAdmin, "LIST_DELETED_MAX", BATCH)
    owner = UserFactory()
    Device.objects.bulk_create(Device(owner=owner, identifier=f"d{i}") for i in range(DEVICES))
    action = {
        "action": "delete_selected",
        "select_across": "1",
        "index": "0",
        "_selected_action": [Device.objects.first().pk],
    }
    confirmation = admin_client.post(_url(Device, "changelist"), action)
    assert confirmation.status_code == 200
    assert f"{DEVICES} devices" in confirmation.text  # counted, not listed
    assert "d1</a>" not in confirmation.text
    with largest_statement["watch"]():
        response = admin_client.post(_url(Device, "changelist"), {**action, "post": "yes"})
    assert response.status_code == 302
    assert not Device.objects.exists()
    assert BATCH <= largest_statement["parameters"] < BATCH + 10
