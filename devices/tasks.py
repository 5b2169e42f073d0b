"""Celery tasks for devices: thin, each one calls a service."""

from celery import shared_task

from devices import sweep


@shared_task(name="devices.tasks.device_sweep_timeouts")
def device_sweep_timeouts():
    """Run by beat every ``DEVICE_SWEEP_INTERVAL_SECONDS``; safe on several workers at once."""
    return sweep.device_sweep_timeouts()
