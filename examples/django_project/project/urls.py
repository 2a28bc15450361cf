from django.contrib import admin
from django.urls import include, path

from project import views

urlpatterns = [
    path("hello", views.hello),
    path("whoami", views.whoami),
    path("admin", views.admin_only),
    path("public", views.public),
    path("fresh", views.fresh),
    path("fresh-minute", views.fresh_minute),
    path("notes", views.notes),
    path("django-admin/", admin.site.urls),
    path("", include("satchel.integrations.django.urls")),
]
