from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from thinger_http import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", views.healthz, name="healthz"),
    path("", include("devices.urls")),
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False), name="home"),
]

handler404 = "thinger_http.views.not_found"
handler500 = "thinger_http.views.server_error"
