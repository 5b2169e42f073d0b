import os

from celery import Celery

from thinger_http.log import connect_celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "thinger_http.settings")

app = Celery("thinger_http")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
connect_celery()  # mask credentials in the worker's and beat's log handlers too
