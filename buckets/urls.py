from django.urls import path, re_path

from buckets import api
from core.identifiers import IDENTIFIER_PATTERN as ID

urlpatterns = [
    path("v1/users/<id:user>/buckets", api.BucketListView.as_view(), name="api-buckets"),
    path(
        "v1/users/<id:user>/buckets/<id:bucket>", api.BucketDetailView.as_view(), name="api-bucket"
    ),
    # v1 reads, writes and clears; the versioned pattern below reads (v2, and v1 in the schema).
    path(
        "v1/users/<id:user>/buckets/<id:bucket>/data",
        api.BucketDataView.as_view(),
        name="api-bucket-data",
    ),
    re_path(
        rf"^(?P<version>v1|v2)/users/(?P<user>{ID})/buckets/(?P<bucket>{ID})/data$",
        api.BucketReadView.as_view(),
        name="api-bucket-read",
    ),
    path(
        "v1/users/<id:user>/buckets/<id:bucket>/exports",
        api.BucketExportListView.as_view(),
        name="api-bucket-exports",
    ),
    path(
        "v1/users/<id:user>/buckets/<id:bucket>/exports/<str:file>",
        api.BucketExportDetailView.as_view(),
        name="api-bucket-export",
    ),
]
