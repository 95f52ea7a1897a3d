from django.apps import AppConfig


class LearnerConfig(AppConfig):
    """The buyer's world: my courses, progress, claiming guest purchases."""

    name = "learner"

    def ready(self):
        from allauth.account.signals import email_confirmed, user_logged_in
        from django.db.models.signals import post_save

        from learner import accounts, signals

        post_save.connect(
            signals.entitlement_saved,
            sender="commerce.Entitlement",
            dispatch_uid="learner-void-certificates",
        )
        email_confirmed.connect(accounts.on_email_confirmed, dispatch_uid="learner-claim-email")
        user_logged_in.connect(accounts.on_user_logged_in, dispatch_uid="learner-claim-login")
