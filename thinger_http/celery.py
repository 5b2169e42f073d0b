import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "thinger_http.settings")

app = Celery("thinger_http")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
