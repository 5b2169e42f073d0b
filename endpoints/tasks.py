"""Celery tasks: thin, they call the services."""

from celery import shared_task

from endpoints.services import endpoint_call_attempt, endpoint_calls_requeue


@shared_task(bind=True, ignore_result=True)
def endpoint_call_deliver(self, call_id):
    # Retries go back to the queue this task came from.
    queue = (self.request.delivery_info or {}).get("routing_key")
    return endpoint_call_attempt(call_id=call_id, queue=queue)


@shared_task(ignore_result=True)
def endpoint_requeue_pending():
    return endpoint_calls_requeue()
