"""The token models move to the accounts app, their tables and rows untouched: only Django's
state changes here, and the content types (with the permissions that point at them) follow."""

from django.db import migrations


def relabel_content_types(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    ContentType.objects.filter(
        app_label="thinger_http", model__in=["accesstoken", "refreshtokenfamily"]
    ).update(app_label="accounts")


def unlabel_content_types(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    ContentType.objects.filter(
        app_label="accounts", model__in=["accesstoken", "refreshtokenfamily"]
    ).update(app_label="thinger_http")


class Migration(migrations.Migration):
    dependencies = [
        ("thinger_http", "0002_refresh_token_families"),
        ("accounts", "0001_initial"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(model_name="refreshtokenfamily", name="owner"),
                migrations.DeleteModel(name="AccessToken"),
                migrations.DeleteModel(name="RefreshTokenFamily"),
            ],
            database_operations=[],
        ),
        migrations.RunPython(relabel_content_types, unlabel_content_types),
    ]
