from django.urls import path

from learner import views

urlpatterns = [
    path("my-courses/", views.my_courses, name="my_courses"),
    path("my-courses/orders/<str:public_id>/", views.order_detail, name="order_detail"),
    path("my-courses/orders/<str:public_id>/gift/resend/", views.resend_gift, name="resend_gift"),
    path("learn/lessons/<id:lesson_id>/complete/", views.complete_lesson, name="complete_lesson"),
    path(
        "learn/lessons/<id:lesson_id>/quizzes/<uuid:quiz_id>/",
        views.submit_quiz,
        name="submit_quiz",
    ),
    path("learn/lessons/<id:lesson_id>/video/", views.video_progress, name="video_progress"),
    path("certificates/<str:code>/", views.certificate, name="certificate"),
    path("my-courses/certificates/<str:code>.pdf", views.certificate_pdf, name="certificate_pdf"),
    path(
        "my-courses/certificates/<str:code>/name/",
        views.certificate_name,
        name="certificate_name",
    ),
    path("claim/find/", views.find_purchases, name="find_purchases"),
    path("claim/<str:token>/", views.claim, name="claim"),
]
