from accounts.models import AccessToken


def access_tokens_of(*, owner):
    """The user's long-lived access tokens, by id."""
    return AccessToken.objects.filter(owner=owner).order_by("identifier")
