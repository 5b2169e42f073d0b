from django.db import transaction

from accounts.models import AccessToken
from core.db import insert_unique, save_changes


@transaction.atomic
def access_token_create(
    *, owner, identifier, name, enabled=True, description="", allow=None, deny=None, expire=None
):
    token = AccessToken(
        owner=owner,
        identifier=identifier,
        name=name,
        description=description,
        enabled=enabled,
        allow=allow if allow is not None else {},
        deny=deny or {},
        expire=expire,
    )
    token.full_clean()
    return insert_unique(token)


def access_token_update(*, token, **fields):
    for name, value in fields.items():
        setattr(token, name, value)
    token.full_clean()
    return save_changes(token, fields)


def access_token_revoke(*, token):
    token.delete()
