"""Celery tasks for devices: thin, each one calls a service."""

from celery import shared_task

from devices import activity, alerts, sweep


@shared_task(name="devices.tasks.device_sweep_timeouts")
def device_sweep_timeouts():
    """Run by beat every ``DEVICE_SWEEP_INTERVAL_SECONDS``; safe on several workers at once."""
    return sweep.device_sweep_timeouts()


@shared_task(name="devices.tasks.device_alerts_dispatch")
def device_alerts_dispatch():
    """Run by beat every ``ALERTS_INTERVAL_SECONDS``; safe on several workers at once."""
    return alerts.device_alerts_dispatch()


@shared_task(name="devices.tasks.callback_activity_write", ignore_result=True)
def callback_activity_write(**fields):
    """A refused or ignored call for the device's activity log (``devices.activity``)."""
    activity.callback_activity_write(**fields)
