"""Build the demo catalog. Safe to run again: existing content is left as it is."""

import io
import os

from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.core.files.images import ImageFile
from django.core.management.base import BaseCommand
from django.db import transaction
from PIL import Image as PILImage
from wagtail.images import get_image_model
from wagtail.models import Page, Site

from config.models import HomePage
from courses.models import CourseIndexPage, CoursePage, LessonPage, LessonResource, ModulePage

ADMIN_EMAIL = "admin@example.com"

COURSES = [
    {
        "slug": "python-foundations",
        "title": "Python Foundations",
        "summary": "Write clear, tested Python from your first script to a small package.",
        "level": "beginner",
        "hours": 6,
        "price": 4900,
        "color": (37, 99, 168),
        "outcomes": [
            "Read and write idiomatic Python",
            "Test code with pytest",
            "Package and publish a library",
        ],
        "modules": {
            "Getting started": [
                ("Why Python", True),
                ("Installing Python", True),
                ("Your first script", False),
            ],
            "Core language": [
                ("Values and types", False),
                ("Functions", False),
                ("Collections", False),
            ],
            "Shipping code": [("Testing with pytest", False), ("Packaging", False)],
        },
    },
    {
        "slug": "django-in-production",
        "title": "Django in Production",
        "summary": "Deploy, observe and scale a Django site without surprises.",
        "level": "advanced",
        "hours": 9,
        "price": 12900,
        "color": (20, 110, 80),
        "outcomes": [
            "Configure settings from the environment",
            "Run migrations safely",
            "Measure before you optimise",
        ],
        "modules": {
            "Foundations": [("The twelve factors", True), ("Settings and secrets", False)],
            "Data": [("Migrations without downtime", False), ("Query counts", False)],
            "Operations": [("Background jobs", False), ("Monitoring", False)],
        },
    },
    {
        "slug": "sql-essentials",
        "title": "SQL Essentials",
        "summary": "Query, join and index relational data with confidence.",
        "level": "intermediate",
        "hours": 4,
        "price": 2900,
        "color": (140, 70, 20),
        "outcomes": ["Write joins and aggregates", "Read a query plan", "Design indexes"],
        "modules": {
            "Querying": [("SELECT basics", True), ("Joins", False)],
            "Performance": [("Indexes", False), ("EXPLAIN", False)],
        },
    },
    {
        "slug": "git-for-everyone",
        "title": "Git for Everyone",
        "summary": "A free, friendly introduction to version control.",
        "level": "beginner",
        "hours": 2,
        "price": 0,
        "color": (110, 60, 150),
        "outcomes": ["Commit, branch and merge", "Recover from mistakes"],
        "modules": {
            "Basics": [("What is version control", False), ("Commits", False)],
            "Collaboration": [("Branches", False), ("Pull requests", False)],
        },
    },
]


def lesson_body(title):
    return [
        {"type": "heading", "value": f"About “{title}”"},
        {
            "type": "text",
            "value": f"<p>This lesson covers <b>{title.lower()}</b> step by step, "
            "with examples you can run yourself.</p>",
        },
        {
            "type": "callout",
            "value": {
                "kind": "tip",
                "text": "<p>Pause and try each example before reading on.</p>",
            },
        },
        {
            "type": "code",
            "value": {
                "language": "python",
                "code": "def greet(name):\n    return f'Hello, {name}!'\n",
            },
        },
    ]


class Command(BaseCommand):
    help = "Create the demo catalog and a local admin user (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--admin-password", default=os.environ.get("DEMO_ADMIN_PASSWORD", "admin-local-only")
        )

    @transaction.atomic
    def handle(self, *args, **options):
        home = self.ensure_home()
        catalog = home.get_children().type(CourseIndexPage).first()
        if catalog is None:
            catalog = CourseIndexPage(
                title="Courses",
                slug="courses",
                intro="<p>Self-paced courses written by working engineers.</p>",
            )
            home.add_child(instance=catalog)
            catalog.save_revision().publish()
        catalog = catalog.specific
        created = 0
        for spec in COURSES:
            if CoursePage.objects.child_of(catalog).filter(slug=spec["slug"]).exists():
                continue
            self.create_course(catalog, spec)
            created += 1
        self.ensure_admin(options["admin_password"])
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo content ready ({created} course(s) created). "
                f"Admin login for local use: {ADMIN_EMAIL} / {options['admin_password']} "
                "at http://127.0.0.1:8000/admin/"
            )
        )

    def ensure_home(self):
        home = HomePage.objects.first()
        if home:
            return home
        root = Page.get_first_root_node()
        home = HomePage(
            title="Home",
            slug="home-page",
            intro="<p>Practical courses you can finish. Preview lessons for free, "
            "buy once, learn at your own pace.</p>",
        )
        root.add_child(instance=home)
        home.save_revision().publish()
        site = Site.objects.filter(is_default_site=True).first()
        old_root = site.root_page if site else None
        if site:
            site.root_page = home
            site.site_name = "Courses"
            site.save()
        else:
            Site.objects.create(
                hostname="localhost", root_page=home, is_default_site=True, site_name="Courses"
            )
        # Wagtail's placeholder welcome page has no content type of ours: remove it.
        if old_root and old_root.specific_class is Page and old_root.depth == 2:
            old_root.delete()
        return home

    def create_course(self, catalog, spec):
        course = CoursePage(
            title=spec["title"],
            slug=spec["slug"],
            summary=spec["summary"],
            level=spec["level"],
            estimated_hours=spec["hours"],
            price_amount=spec["price"],
            price_currency="usd",
            cover_image=self.cover(spec),
            outcomes=[{"type": "outcome", "value": o} for o in spec["outcomes"]],
            description=[
                {
                    "type": "text",
                    "value": f"<p>{spec['summary']} Each lesson is short, "
                    "practical and ends with an exercise.</p>",
                }
            ],
        )
        catalog.add_child(instance=course)
        course.save_revision().publish()
        for module_title, lessons in spec["modules"].items():
            module = ModulePage(title=module_title, intro=f"<p>{module_title}.</p>")
            course.add_child(instance=module)
            module.save_revision().publish()
            for lesson_title, preview in lessons:
                lesson = LessonPage(
                    title=lesson_title,
                    summary=f"{lesson_title} in practice.",
                    body=lesson_body(lesson_title),
                    estimated_minutes=12,
                    is_free_preview=preview,
                )
                module.add_child(instance=lesson)
                lesson.save_revision().publish()
                if lesson_title == lessons[0][0]:
                    self.attach_notes(lesson)

    def attach_notes(self, lesson):
        """A small PDF on the private storage, so the demo shows protected downloads."""
        text = f"Notes for {lesson.title}".encode("latin-1", "replace")
        stream = b"BT /F1 18 Tf 72 720 Td (" + text + b") Tj ET"
        objects = [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
            b"/Resources << /Font << /F1 5 0 R >> >> >>",
            b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        ]
        pdf, offsets = b"%PDF-1.4\n", []
        for number, body in enumerate(objects, start=1):
            offsets.append(len(pdf))
            pdf += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
        xref = len(pdf)
        pdf += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
        pdf += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
        size = len(objects) + 1
        pdf += f"trailer << /Size {size} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
        resource = LessonResource(
            lesson=lesson,
            title=f"{lesson.title} — notes (PDF)",
            description="Printable notes for this lesson.",
        )
        resource.file.save(f"{lesson.slug}-notes.pdf", ContentFile(pdf), save=True)

    def cover(self, spec):
        Image = get_image_model()
        title = f"Cover: {spec['title']}"
        existing = Image.objects.filter(title=title).first()
        if existing:
            return existing
        buffer = io.BytesIO()
        PILImage.new("RGB", (960, 540), spec["color"]).save(buffer, format="PNG")
        return Image.objects.create(
            title=title, file=ImageFile(buffer, name=f"{spec['slug']}-cover.png")
        )

    def ensure_admin(self, password):
        User = get_user_model()
        user = User.objects.filter(username="admin").first()
        if user is None:
            user = User.objects.create_superuser("admin", ADMIN_EMAIL, password)
        EmailAddress.objects.get_or_create(
            user=user, email=ADMIN_EMAIL, defaults={"verified": True, "primary": True}
        )
