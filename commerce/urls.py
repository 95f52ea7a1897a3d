from django.urls import path

from commerce import views
from commerce.backoffice.metrics import metrics
from commerce.billing import views as billing

urlpatterns = [
    path("checkout/success/", views.success, name="checkout_success"),
    path("checkout/cancel/", views.cancel, name="checkout_cancel"),
    path("checkout/orders/<str:public_id>/status/", views.order_status, name="order_status"),
    path("checkout/<id:course_page_id>/", views.checkout, name="checkout"),
    path("webhooks/stripe/", views.stripe_webhook, name="stripe_webhook"),
    path("membership/", billing.plans, name="membership_plans"),
    path("membership/<id:plan_id>/checkout/", billing.checkout, name="membership_checkout"),
    path("account/billing/", billing.billing, name="billing"),
    path("metrics", metrics, name="metrics"),
    path("downloads/<id:resource_id>/", views.download, name="download"),
    path("downloads/file/<str:token>/", views.download_local, name="download_local"),
]
