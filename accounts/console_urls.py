from django.urls import path

from accounts import console

urlpatterns = [
    path("account/", console.account, name="console-account"),
    path("account/password", console.password_change, name="console-account-password"),
    path("account/tokens/new", console.TokenCreateView.as_view(), name="console-token-create"),
    path(
        "account/tokens/<tokenid:token>/enabled",
        console.token_enable,
        name="console-token-enable",
    ),
    path(
        "account/tokens/<tokenid:token>/revoke",
        console.TokenRevokeView.as_view(),
        name="console-token-revoke",
    ),
]
