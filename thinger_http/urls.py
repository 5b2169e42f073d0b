from django.contrib import admin
from django.urls import include, path, register_converter
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from accounts import api_views
from core import console
from core.converters import IdentifierConverter, TokenIdConverter
from thinger_http import server_api, views

register_converter(IdentifierConverter, "id")
register_converter(TokenIdConverter, "tokenid")

urlpatterns = [
    # First: the device callback is most of the traffic, and it is resolved before any other.
    path("", include("devices.urls")),
    path("admin/", admin.site.urls),
    path("healthz", views.healthz, name="healthz"),
    path("v1/server/assets", server_api.ServerAssetsView.as_view(), name="server-assets"),
    path("v1/server/events", server_api.ServerEventsView.as_view(), name="server-events"),
    path("v1/users/<id:user>/events", server_api.EventsWithoutUpgradeView.as_view(), name="events"),
    path("oauth/token", api_views.OAuthTokenView.as_view(), name="oauth-token"),
    path("v1/users/<id:user>/tokens", api_views.TokenListView.as_view(), name="api-tokens"),
    path(
        "v1/users/<id:user>/tokens/<tokenid:token>",
        api_views.TokenDetailView.as_view(),
        name="api-token",
    ),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("", include("buckets.urls")),
    path("", include("endpoints.urls")),
    path("", include("dashboards.urls")),
    path("", include("dashboards.shared_urls")),
    # The browser console.
    path("login/", console.LoginView.as_view(), name="console-login"),
    path("logout/", console.LogoutView.as_view(), name="console-logout"),
    path("", include("devices.console_urls")),
    path("", include("buckets.console_urls")),
    path("", include("endpoints.console_urls")),
    path("", include("accounts.console_urls")),
    path("", include("dashboards.console_urls")),
    path("", console.home, name="console-home"),
]

handler400 = "thinger_http.views.bad_request"
handler404 = "thinger_http.views.not_found"
handler500 = "thinger_http.views.server_error"
