from django.urls import path

from buckets import console

urlpatterns = [
    path("buckets/", console.bucket_list, name="console-bucket-list"),
    path("buckets/new", console.BucketEditView.as_view(), name="console-bucket-create"),
    path("buckets/<id:bucket>/", console.bucket_detail, name="console-bucket"),
    path("buckets/<id:bucket>/edit", console.BucketEditView.as_view(), name="console-bucket-edit"),
    path(
        "buckets/<id:bucket>/delete",
        console.BucketDeleteView.as_view(),
        name="console-bucket-delete",
    ),
    path("buckets/<id:bucket>/clear", console.bucket_clear, name="console-bucket-clear"),
    path("buckets/<id:bucket>/exports", console.bucket_export_create, name="console-bucket-export"),
    path(
        "buckets/<id:bucket>/exports/<str:file>/progress",
        console.bucket_export_progress,
        name="console-bucket-export-progress",
    ),
    path(
        "buckets/<id:bucket>/exports/<str:file>/download",
        console.bucket_export_download,
        name="console-bucket-export-download",
    ),
    path(
        "buckets/<id:bucket>/exports/<str:file>/delete",
        console.bucket_export_delete,
        name="console-bucket-export-delete",
    ),
]
