from django.core.management.base import BaseCommand

from commerce.models import MembershipPlan, PlanPrice

PLAN = {
    "name": "All-access",
    "description": "Every course, including new ones, while you are a member. Cancel any time.",
    "prices": {"month": 1900, "year": 19000},
}


class Command(BaseCommand):
    help = "Create the demo membership plan (every course, monthly or yearly); idempotent."

    def handle(self, *args, **options):
        if MembershipPlan.objects.filter(name=PLAN["name"]).exists():
            self.stdout.write("Demo membership plan already there.")
            return
        plan = MembershipPlan.objects.create(
            name=PLAN["name"], description=PLAN["description"], all_courses=True
        )
        for interval, amount in PLAN["prices"].items():
            PlanPrice.objects.create(plan=plan, interval=interval, amount=amount, currency="usd")
        self.stdout.write(self.style.SUCCESS(f"Demo membership plan {plan.name} created."))
