"""Build the demo catalog. Safe to run again: existing content is left as it is."""

import io
import os
import random

from allauth.account.models import EmailAddress
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.core.files.images import ImageFile
from django.core.management.base import BaseCommand
from django.db import transaction
from PIL import Image as PILImage
from PIL import ImageChops, ImageDraw, ImageFont
from wagtail.images import get_image_model
from wagtail.models import Page, Site

from base.models import HomePage
from courses.models import (
    BundleCourse,
    BundlePage,
    CourseIndexPage,
    CoursePage,
    LessonPage,
    LessonResource,
    ModulePage,
)

ADMIN_EMAIL = "admin@example.com"


def lesson(title, summary, text, language, code, preview=False, tip=None):
    return {
        "title": title,
        "summary": summary,
        "text": text,
        "language": language,
        "code": code,
        "preview": preview,
        "tip": tip or "Pause and run the example yourself before reading on.",
    }


COURSES = [
    {
        "slug": "python-foundations",
        "title": "Python Foundations",
        "summary": "Write clear, tested Python from your first script to a small package.",
        "description": [
            "<p>For people who have written a little code in another language, or none at all. "
            "You start at the interactive prompt and finish with a small library of your own, "
            "tested with pytest and installable with pip.</p>",
            "<p>Every example runs on Python 3.11 or newer, on Linux, macOS and Windows.</p>",
        ],
        "level": "beginner",
        "hours": 6,
        "price": 4900,
        "color": (37, 99, 168),
        "motif": "prompt",
        "outcomes": [
            "Read and write idiomatic Python",
            "Test code with pytest",
            "Package and publish a library",
        ],
        "modules": {
            "Getting started": [
                lesson(
                    "Why Python",
                    "A language that reads like the problem it solves.",
                    "<p>Counting words takes one import and two lines: the standard library "
                    "already has the tool, and the code says what it does.</p>",
                    "python",
                    "from collections import Counter\n\n"
                    'text = "the quick brown fox jumps over the lazy dog the end"\n'
                    "counts = Counter(text.split())\n"
                    "print(counts.most_common(2))\n"
                    "# [('the', 3), ('quick', 1)]\n",
                    preview=True,
                ),
                lesson(
                    "Installing Python",
                    "Install Python and give each project its own virtual environment.",
                    "<p>Check which Python you have, then create a virtual environment so the "
                    "packages of one project never clash with another's.</p>",
                    "bash",
                    "python3 --version\n"
                    "python3 -m venv .venv\n"
                    "source .venv/bin/activate   # Windows: .venv\\Scripts\\activate\n"
                    "python -m pip install --upgrade pip\n",
                    preview=True,
                    tip="Run <code>python -m pip</code> rather than <code>pip</code>: "
                    "it always uses the Python you are running.",
                ),
                lesson(
                    "Your first script",
                    "A script that takes an argument and can also be imported.",
                    "<p>The <b>__main__</b> guard lets the same file run as a program "
                    "and be imported by tests.</p>",
                    "python",
                    '"""hello.py: greet whoever runs it."""\n'
                    "import sys\n\n\n"
                    "def main(argv):\n"
                    '    name = argv[1] if len(argv) > 1 else "world"\n'
                    '    print(f"Hello, {name}!")\n\n\n'
                    'if __name__ == "__main__":\n'
                    "    main(sys.argv)\n",
                ),
            ],
            "Core language": [
                lesson(
                    "Values and types",
                    "Numbers, strings and lists, and how to ask what something is.",
                    "<p>Every value has a type; <b>type()</b> tells you which, and the "
                    "type decides what the value can do.</p>",
                    "python",
                    "price = 49                         # int\n"
                    "rate = 0.2                         # float\n"
                    'title = "Python"                   # str\n'
                    'tags = ["beginner", "practical"]   # list\n\n'
                    "print(type(price).__name__, type(rate).__name__)  # int float\n"
                    "print(price * (1 - rate))                          # 39.2\n"
                    "print(title.upper(), len(tags))                    # PYTHON 2\n",
                ),
                lesson(
                    "Functions",
                    "Name a piece of work, give it parameters and defaults, fail loudly.",
                    "<p>A function with a docstring, a default argument and a clear error "
                    "for values it cannot handle.</p>",
                    "python",
                    "def total(prices, discount=0.0):\n"
                    '    """Sum the prices and apply a discount between 0 and 1."""\n'
                    "    if not 0 <= discount <= 1:\n"
                    '        raise ValueError("discount must be between 0 and 1")\n'
                    "    return round(sum(prices) * (1 - discount), 2)\n\n\n"
                    "total([19.0, 30.0])                # 49.0\n"
                    "total([19.0, 30.0], discount=0.5)  # 24.5\n",
                ),
                lesson(
                    "Collections",
                    "Lists, dictionaries and sets, built with comprehensions.",
                    "<p>Comprehensions build a collection from another in one readable line.</p>",
                    "python",
                    'lessons = [("Functions", 12), ("Collections", 15), ("Testing", 20)]\n\n'
                    "minutes = {title: length for title, length in lessons}\n"
                    "long_ones = [title for title, length in lessons if length > 12]\n"
                    'levels = {"beginner", "advanced", "beginner"}\n\n'
                    'print(minutes["Testing"])  # 20\n'
                    "print(long_ones)           # ['Collections', 'Testing']\n"
                    "print(sorted(levels))      # ['advanced', 'beginner']\n",
                ),
            ],
            "Shipping code": [
                lesson(
                    "Testing with pytest",
                    "Plain functions and plain asserts: tests that read like examples.",
                    "<p>pytest finds every <b>test_*</b> function and shows the values "
                    "involved when an assert fails.</p>",
                    "python",
                    "# test_prices.py: run with `pytest -q`\n"
                    "import pytest\n\n"
                    "from prices import total\n\n\n"
                    "def test_total_applies_the_discount():\n"
                    "    assert total([19.0, 30.0], discount=0.5) == 24.5\n\n\n"
                    "def test_total_rejects_a_discount_above_one():\n"
                    "    with pytest.raises(ValueError):\n"
                    "        total([10.0], discount=2)\n",
                ),
                lesson(
                    "Packaging",
                    "Build a wheel from pyproject.toml and publish it to the test index.",
                    "<p>With the project described in <b>pyproject.toml</b>, two "
                    "commands build it and one uploads it.</p>",
                    "bash",
                    "python -m pip install build twine\n"
                    "python -m build\n"
                    "ls dist/\n"
                    "# prices-0.1.0-py3-none-any.whl  prices-0.1.0.tar.gz\n"
                    "python -m twine upload --repository testpypi dist/*\n",
                ),
            ],
        },
    },
    {
        "slug": "django-in-production",
        "title": "Django in Production",
        "summary": "Deploy, observe and scale a Django site without surprises.",
        "description": [
            "<p>For developers who have built a Django site and now have to run it for real "
            "users. You take one small shop from a laptop to a server: configuration, "
            "database changes, slow pages, background work and the logs that tell you what "
            "happened.</p>",
            "<p>The examples use Django 5, PostgreSQL and gunicorn; nothing depends on a "
            "particular hosting provider.</p>",
        ],
        "level": "advanced",
        "hours": 9,
        "price": 12900,
        "color": (20, 110, 80),
        "motif": "servers",
        "outcomes": [
            "Configure settings from the environment",
            "Run migrations safely",
            "Measure before you optimise",
        ],
        "modules": {
            "Foundations": [
                lesson(
                    "The twelve factors",
                    "One build, many deploys: only the environment changes.",
                    "<p>The same code runs in staging and production; what differs is "
                    "passed in as environment variables.</p>",
                    "bash",
                    "export DATABASE_URL=postgres://shop@db.internal/shop\n"
                    "export SECRET_KEY=\"$(python -c 'import secrets; "
                    "print(secrets.token_urlsafe(50))')\"\n"
                    "python manage.py check --deploy\n"
                    "gunicorn shop.wsgi --workers 3 --bind 127.0.0.1:8000\n",
                    preview=True,
                ),
                lesson(
                    "Settings and secrets",
                    "Read settings from the environment and fail fast when one is missing.",
                    "<p>A missing secret should stop the deploy, not surface as a strange "
                    "error an hour later.</p>",
                    "python",
                    "# settings.py\n"
                    "import os\n\n"
                    "import dj_database_url\n\n"
                    'DEBUG = os.environ.get("DEBUG") == "1"\n'
                    'SECRET_KEY = os.environ["SECRET_KEY"]  # KeyError at startup if unset\n'
                    'ALLOWED_HOSTS = os.environ.get("ALLOWED_HOSTS", "").split(",")\n'
                    'DATABASES = {"default": dj_database_url.config(conn_max_age=60)}\n'
                    "SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = not DEBUG\n",
                ),
            ],
            "Data": [
                lesson(
                    "Migrations without downtime",
                    "Change the schema in steps the running code can survive.",
                    "<p>Step one adds the column as nullable, so the old code keeps working "
                    "while the new code is deployed; a later migration fills and tightens "
                    "it.</p>",
                    "python",
                    "from django.db import migrations, models\n\n\n"
                    "class Migration(migrations.Migration):\n"
                    '    dependencies = [("shop", "0007_order_total")]\n\n'
                    "    operations = [\n"
                    "        migrations.AddField(\n"
                    '            model_name="order",\n'
                    '            name="currency",\n'
                    "            field=models.CharField(max_length=3, null=True),\n"
                    "        ),\n"
                    "    ]\n",
                ),
                lesson(
                    "Query counts",
                    "Find the N+1 query and keep it from coming back.",
                    "<p>Fetch related rows up front, then pin the number of queries in a test "
                    "so a template change cannot quietly multiply them.</p>",
                    "python",
                    'orders = Order.objects.select_related("customer").prefetch_related("items")\n'
                    "for order in orders[:50]:\n"
                    "    print(order.customer.email, len(order.items.all()))\n\n\n"
                    "def test_order_list_stays_at_three_queries(client, "
                    "django_assert_num_queries):\n"
                    "    with django_assert_num_queries(3):\n"
                    '        client.get("/orders/")\n',
                ),
            ],
            "Operations": [
                lesson(
                    "Background jobs",
                    "Answer the request now, do the slow work in a worker.",
                    "<p>Sending an e-mail or calling a payment provider does not belong in "
                    "the request: queue it and let a worker retry it if it fails.</p>",
                    "python",
                    "from django_q.tasks import async_task\n\n\n"
                    "def send_receipt(order_id):\n"
                    "    order = Order.objects.get(pk=order_id)\n"
                    "    order.send_receipt_email()\n\n\n"
                    "def checkout_done(request, order):\n"
                    '    async_task("shop.tasks.send_receipt", order.pk)\n'
                    '    return redirect("order-detail", order.pk)\n',
                ),
                lesson(
                    "Monitoring",
                    "Log how long every request takes, then look at the slow ones.",
                    "<p>A ten-line middleware gives every request a duration in the logs; "
                    "measure before you optimise.</p>",
                    "python",
                    "import logging\n"
                    "import time\n\n"
                    'logger = logging.getLogger("shop.timing")\n\n\n'
                    "class TimingMiddleware:\n"
                    "    def __init__(self, get_response):\n"
                    "        self.get_response = get_response\n\n"
                    "    def __call__(self, request):\n"
                    "        started = time.monotonic()\n"
                    "        response = self.get_response(request)\n"
                    "        ms = (time.monotonic() - started) * 1000\n"
                    '        logger.info("%s %s %s %.0fms", request.method, request.path,\n'
                    "                    response.status_code, ms)\n"
                    "        return response\n",
                ),
            ],
        },
    },
    {
        "slug": "sql-essentials",
        "title": "SQL Essentials",
        "summary": "Query, join and index relational data with confidence.",
        "description": [
            "<p>You work on one small shop database from the first lesson to the last: "
            "courses, customers and orders. Each lesson adds one idea and a query you can "
            "run against it.</p>",
            "<p>The examples are written for PostgreSQL and run, with small changes, on "
            "SQLite and MySQL.</p>",
        ],
        "level": "intermediate",
        "hours": 4,
        "price": 2900,
        "color": (140, 70, 20),
        "motif": "database",
        "outcomes": ["Write joins and aggregates", "Read a query plan", "Design indexes"],
        "modules": {
            "Querying": [
                lesson(
                    "SELECT basics",
                    "Choose columns, filter rows, sort and limit.",
                    "<p>The five cheapest beginner courses: a query reads almost like the "
                    "question.</p>",
                    "sql",
                    "SELECT title, price\n"
                    "FROM courses\n"
                    "WHERE level = 'beginner'\n"
                    "ORDER BY price\n"
                    "LIMIT 5;\n",
                    preview=True,
                ),
                lesson(
                    "Joins",
                    "Combine tables, then count and sum per group.",
                    "<p>A <b>LEFT JOIN</b> keeps the courses nobody has bought yet; "
                    "<b>GROUP BY</b> turns orders into revenue per course.</p>",
                    "sql",
                    "SELECT c.title, COUNT(o.id) AS orders, COALESCE(SUM(o.amount), 0) AS revenue\n"
                    "FROM courses AS c\n"
                    "LEFT JOIN orders AS o ON o.course_id = c.id AND o.status = 'paid'\n"
                    "GROUP BY c.title\n"
                    "ORDER BY revenue DESC;\n",
                ),
            ],
            "Performance": [
                lesson(
                    "Indexes",
                    "Index the way you search, and let a partial index enforce a rule.",
                    "<p>A composite index serves a customer's order history newest first; a "
                    "partial unique index allows only one paid order per customer and "
                    "course.</p>",
                    "sql",
                    "CREATE INDEX orders_customer_created_idx\n"
                    "    ON orders (customer_id, created_at DESC);\n\n"
                    "CREATE UNIQUE INDEX orders_one_paid_idx\n"
                    "    ON orders (customer_id, course_id)\n"
                    "    WHERE status = 'paid';\n",
                ),
                lesson(
                    "EXPLAIN",
                    "Ask the database how it runs a query, and check the index is used.",
                    "<p><b>EXPLAIN ANALYZE</b> runs the query and shows the plan with "
                    "real timings: look for an index scan instead of a sequential scan.</p>",
                    "sql",
                    "EXPLAIN ANALYZE\n"
                    "SELECT id, course_id, amount\n"
                    "FROM orders\n"
                    "WHERE customer_id = 42\n"
                    "ORDER BY created_at DESC\n"
                    "LIMIT 10;\n"
                    "-- Limit -> Index Scan using orders_customer_created_idx on orders\n",
                ),
            ],
        },
    },
    {
        "slug": "git-for-everyone",
        "title": "Git for Everyone",
        "summary": "A free, friendly introduction to version control.",
        "description": [
            "<p>No command-line experience needed. You keep a small recipe book in Git: save "
            "versions of it, try ideas on branches, undo what went wrong and share it with "
            "others.</p>",
            "<p>Works the same on Linux, macOS and Windows (with Git Bash).</p>",
        ],
        "level": "beginner",
        "hours": 2,
        "price": 0,
        "color": (110, 60, 150),
        "motif": "branches",
        "outcomes": ["Commit, branch and merge", "Recover from mistakes"],
        "modules": {
            "Basics": [
                lesson(
                    "What is version control",
                    "A history of your project you can read, compare and go back to.",
                    "<p>Start a repository for the recipe book and ask Git what it sees.</p>",
                    "bash",
                    "git init recipes\n"
                    "cd recipes\n"
                    'echo "# Recipes" > README.md\n'
                    "git status\n"
                    "# Untracked files: README.md\n",
                ),
                lesson(
                    "Commits",
                    "Save a version with a message that says why.",
                    "<p>Stage the change, commit it, and read the history back.</p>",
                    "bash",
                    "git add README.md\n"
                    'git commit -m "Start the recipe book"\n'
                    "git log --oneline\n"
                    "# 3f2a9c1 Start the recipe book\n"
                    "git restore README.md   # undo changes since the last commit\n",
                ),
            ],
            "Collaboration": [
                lesson(
                    "Branches",
                    "Try an idea on a branch, then merge it back.",
                    "<p>A branch is a cheap, separate line of work; merging brings it back "
                    "into <b>main</b>.</p>",
                    "bash",
                    "git switch -c add-pancakes\n"
                    'echo "Pancakes: flour, milk, eggs" >> README.md\n'
                    'git commit -am "Add pancakes"\n'
                    "git switch main\n"
                    "git merge add-pancakes\n",
                ),
                lesson(
                    "Pull requests",
                    "Share a branch and ask for a review before it is merged.",
                    "<p>Push the branch, open a pull request on your Git host, and tidy up "
                    "once it is merged.</p>",
                    "bash",
                    "git push -u origin add-pancakes\n"
                    "# open a pull request from add-pancakes into main, then after review:\n"
                    "git switch main\n"
                    "git pull\n"
                    "git branch -d add-pancakes\n",
                ),
            ],
        },
    },
]


COVER_SIZE = (960, 540)


BUNDLE = {
    "title": "Backend Developer Bundle",
    "slug": "backend-developer-bundle",
    "summary": "Python, Django and SQL together: everything to build and run a web backend.",
    "price": 14900,
    "courses": ["python-foundations", "django-in-production", "sql-essentials"],
    "description": "<p>The three courses a backend developer needs, for less than their "
    "total. Buy it for yourself, or as a gift: the recipient gets an e-mail with a link to "
    "claim it on the day you choose.</p>",
}


def _mix(color, other, amount):
    return tuple(round(c + (o - c) * amount) for c, o in zip(color, other, strict=True))


def _motif_prompt(draw, box, ink, faint):
    """A code editor window: title bar, a prompt and lines of code."""
    left, top, right, bottom = box
    draw.rounded_rectangle(box, radius=36, fill=(15, 23, 32, 150), outline=faint, width=4)
    for i, dot in enumerate(((255, 95, 86), (255, 189, 46), (39, 201, 63))):
        x = left + 44 + i * 40
        draw.ellipse((x - 12, top + 30, x + 12, top + 54), fill=(*dot, 230))
    draw.line((left, top + 84, right, top + 84), fill=faint, width=4)
    font = ImageFont.load_default(size=36)
    widths = (0.62, 0.44, 0.74, 0.30, 0.56, 0.38)
    for row, width in enumerate(widths):
        y = top + 130 + row * 62
        indent = 0 if row in (0, 3) else 56
        prompt = ">>>" if row in (0, 3) else "..."
        draw.text((left + 40, y - 8), prompt, fill=(255, 214, 102, 240), font=font)
        x0 = left + 150 + indent
        draw.rounded_rectangle(
            (x0, y, x0 + (right - left - 220) * width, y + 26), radius=13, fill=ink
        )


def _motif_servers(draw, box, ink, faint):
    """A server rack beside a chart that climbs."""
    left, top, right, bottom = box
    rack_right = left + (right - left) * 0.45
    for i in range(4):
        y = top + i * ((bottom - top) / 4)
        unit = (left, y + 10, rack_right, y + (bottom - top) / 4 - 10)
        draw.rounded_rectangle(unit, radius=18, fill=(15, 23, 32, 120), outline=faint, width=4)
        for j in range(3):
            cx = left + 40 + j * 34
            cy = (unit[1] + unit[3]) / 2
            fill = (120, 255, 170, 235) if (i + j) % 3 else (255, 210, 90, 235)
            draw.ellipse((cx - 9, cy - 9, cx + 9, cy + 9), fill=fill)
        draw.rounded_rectangle(
            (rack_right - 150, cy - 8, rack_right - 30, cy + 8), radius=8, fill=faint
        )
    chart_left = rack_right + 60
    heights = (0.25, 0.4, 0.35, 0.6, 0.55, 0.8, 0.95)
    step = (right - chart_left) / (len(heights) - 1)
    points = [(chart_left + i * step, bottom - h * (bottom - top)) for i, h in enumerate(heights)]
    draw.polygon([*points, (right, bottom), (chart_left, bottom)], fill=(255, 255, 255, 45))
    draw.line(points, fill=ink, width=10, joint="curve")
    for x, y in points:
        draw.ellipse((x - 14, y - 14, x + 14, y + 14), fill=ink)


def _motif_database(draw, box, ink, faint):
    """A database cylinder and the table it holds."""
    left, top, right, bottom = box
    cyl_right = left + (right - left) * 0.42
    rim = 70
    for i in range(3):
        y0 = top + 40 + i * 120
        draw.rectangle((left, y0 + rim / 2, cyl_right, y0 + 120 + rim / 2), fill=(15, 23, 32, 90))
        draw.ellipse((left, y0 + 120, cyl_right, y0 + 120 + rim), fill=faint, outline=ink, width=5)
        draw.ellipse(
            (left, y0, cyl_right, y0 + rim), fill=(255, 255, 255, 70), outline=ink, width=5
        )
        draw.line((left, y0 + rim / 2, left, y0 + 120 + rim / 2), fill=ink, width=5)
        draw.line((cyl_right, y0 + rim / 2, cyl_right, y0 + 120 + rim / 2), fill=ink, width=5)
    grid_left = cyl_right + 70
    rows, cols = 6, 3
    cell_w = (right - grid_left) / cols
    cell_h = (bottom - top) / rows
    draw.rounded_rectangle(
        (grid_left, top, right, top + cell_h), radius=12, fill=(255, 255, 255, 120)
    )
    for r in range(rows):
        for c in range(cols):
            x, y = grid_left + c * cell_w, top + r * cell_h
            draw.rectangle((x, y, x + cell_w, y + cell_h), outline=faint, width=3)
            if r:
                w = cell_w * (0.35 + 0.45 * ((r * 7 + c * 3) % 5) / 4)
                draw.rounded_rectangle(
                    (x + 18, y + cell_h / 2 - 9, x + w - 10, y + cell_h / 2 + 9),
                    radius=9,
                    fill=ink,
                )


def _motif_branches(draw, box, ink, faint):
    """A commit graph: main, a branch that leaves and merges back."""
    left, top, right, bottom = box
    main_y = top + (bottom - top) * 0.68
    branch_y = top + (bottom - top) * 0.22
    xs = [left + i * (right - left) / 6 for i in range(7)]
    draw.line((xs[0], main_y, xs[-1], main_y), fill=ink, width=14)
    curve_up = [
        (xs[1] + (xs[2] - xs[1]) * t / 10, main_y - (main_y - branch_y) * (1 - (1 - t / 10) ** 2))
        for t in range(11)
    ]
    curve_down = [
        (xs[4] + (xs[5] - xs[4]) * t / 10, branch_y + (main_y - branch_y) * (t / 10) ** 2)
        for t in range(11)
    ]
    draw.line(
        [*curve_up, (xs[4], branch_y), *curve_down],
        fill=(255, 214, 102, 240),
        width=14,
        joint="curve",
    )
    for x in xs:
        draw.ellipse((x - 30, main_y - 30, x + 30, main_y + 30), fill=ink)
        draw.ellipse((x - 14, main_y - 14, x + 14, main_y + 14), fill=(15, 23, 32, 200))
    for x in (xs[2], xs[3], xs[4]):
        draw.ellipse((x - 30, branch_y - 30, x + 30, branch_y + 30), fill=(255, 214, 102, 240))
        draw.ellipse((x - 14, branch_y - 14, x + 14, branch_y + 14), fill=(15, 23, 32, 200))


MOTIFS = {
    "prompt": _motif_prompt,
    "servers": _motif_servers,
    "database": _motif_database,
    "branches": _motif_branches,
}


def cover_png(spec):
    """The course's cover as PNG bytes: a gradient, soft shapes, its motif and its title.
    Drawn at twice the size and scaled down for smooth edges; the same spec gives the same
    bytes every time (shapes come from a generator seeded with the slug, no network)."""
    scale = 2
    width, height = COVER_SIZE[0] * scale, COVER_SIZE[1] * scale
    color = spec["color"]
    light, dark = _mix(color, (255, 255, 255), 0.25), _mix(color, (0, 0, 0), 0.55)

    ramp = PILImage.linear_gradient("L")
    mask = ImageChops.add(
        ramp.rotate(90).resize((width, height)), ramp.resize((width, height)), scale=2
    )
    image = PILImage.composite(
        PILImage.new("RGB", (width, height), dark),
        PILImage.new("RGB", (width, height), light),
        mask,
    )
    # radial_gradient is 0 at the centre and 181 at the middle of each edge: fade to 0 there
    glow = PILImage.radial_gradient("L").point(lambda v: round(max(0, 181 - v) * 0.5))
    glow = glow.resize((width, width))
    image.paste(
        PILImage.new("RGB", (width, width), _mix(light, (255, 255, 255), 0.3)),
        (width // 3, -width // 2),
        glow,
    )

    overlay = PILImage.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    rng = random.Random(spec["slug"])
    for _ in range(7):
        radius = rng.randint(80, 360)
        x, y = rng.randint(0, width), rng.randint(0, height)
        alpha = rng.randint(14, 34)
        if rng.random() < 0.5:
            draw.ellipse(
                (x - radius, y - radius, x + radius, y + radius), fill=(255, 255, 255, alpha)
            )
        else:
            draw.ellipse(
                (x - radius, y - radius, x + radius, y + radius),
                outline=(255, 255, 255, alpha * 2),
                width=10,
            )
    ink, faint = (255, 255, 255, 235), (255, 255, 255, 90)
    MOTIFS[spec["motif"]](
        draw, (width * 0.52, height * 0.12, width * 0.93, height * 0.62), ink, faint
    )

    margin = 64 * scale
    label_font = ImageFont.load_default(size=26 * scale)
    level = dict(CoursePage.LEVELS)[spec["level"]]
    hours = f"{spec['hours']} HOUR{'' if spec['hours'] == 1 else 'S'}"
    label = f"{level.upper()}  ·  {hours}"
    label_width = draw.textlength(label, font=label_font)
    draw.rounded_rectangle(
        (margin, height - 204 * scale, margin + label_width + 36 * scale, height - 160 * scale),
        radius=22 * scale,
        fill=(15, 23, 32, 110),
    )
    draw.text((margin + 18 * scale, height - 200 * scale), label, font=label_font, fill=ink)
    size = 60 * scale  # smaller for a title that would not fit on one line
    while (
        size > 24 * scale
        and draw.textlength(spec["title"], font=ImageFont.load_default(size=size))
        > width - 2 * margin
    ):
        size -= 4 * scale
    title_font = ImageFont.load_default(size=size)
    y = height - 120 * scale
    draw.text(
        (margin + 3 * scale, y + 3 * scale), spec["title"], font=title_font, fill=(0, 0, 0, 90)
    )
    draw.text(
        (margin, y),
        spec["title"],
        font=title_font,
        fill=(255, 255, 255, 255),
        stroke_width=1,
        stroke_fill=(255, 255, 255, 255),
    )
    image = PILImage.alpha_composite(image.convert("RGBA"), overlay).convert("RGB")
    image = image.resize(COVER_SIZE, PILImage.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


# Learning depth in the demo: Python Foundations' second lesson has a video (offline, the local
# stand-in file: STREAM_LOCAL_VIDEO) and a quiz to pass; Django in Production opens a module a
# week after the learner's purchase.
DEMO_VIDEO_UID = "5d5bc37ffcf54c9b82e996823bffbb81"
WITH_VIDEO_AND_QUIZ = {"python-foundations"}
WEEKLY_MODULES = {"django-in-production"}
DEMO_QUIZ = {
    "title": "Check your understanding",
    "pass_mark": 50,
    "required": True,
    "questions": [
        {
            "prompt": "What does Counter(text.split()).most_common(1) return?",
            "multiple": False,
            "choices": [
                {"text": "The most frequent word and its count, in a list", "correct": True},
                {"text": "The number of distinct words", "correct": False},
                {"text": "The first word of the text", "correct": False},
            ],
            "explanation": "<p><code>most_common(n)</code> lists the n most frequent items "
            "with their counts, most frequent first.</p>",
        },
        {
            "prompt": "Which of these are in Python's standard library?",
            "multiple": True,
            "choices": [
                {"text": "collections", "correct": True},
                {"text": "pathlib", "correct": True},
                {"text": "requests", "correct": False},
            ],
            "explanation": "<p><code>requests</code> is installed from PyPI.</p>",
        },
    ],
}


def lesson_body(spec):
    return [
        {"type": "text", "value": spec["text"]},
        {"type": "code", "value": {"language": spec["language"], "code": spec["code"]}},
        {"type": "callout", "value": {"kind": "tip", "text": f"<p>{spec['tip']}</p>"}},
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
        self.ensure_bundle(catalog)
        self.ensure_admin(options["admin_password"])
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo content ready ({created} course(s) created). "
                f"Admin login for local use: {ADMIN_EMAIL} / {options['admin_password']} "
                f"at {settings.SITE_URL}/admin/"
            )
        )

    def ensure_bundle(self, catalog):
        """Three paid courses at less than their total, to show bundles (and give one)."""
        if BundlePage.objects.child_of(catalog).filter(slug=BUNDLE["slug"]).exists():
            return
        courses = {c.slug: c for c in CoursePage.objects.child_of(catalog)}
        members = [courses[slug] for slug in BUNDLE["courses"] if slug in courses]
        if not members:
            return
        bundle = BundlePage(
            title=BUNDLE["title"],
            slug=BUNDLE["slug"],
            summary=BUNDLE["summary"],
            price_amount=BUNDLE["price"],
            price_currency="usd",
            cover_image=members[0].cover_image,
            description=[{"type": "text", "value": BUNDLE["description"]}],
            bundle_courses=[
                BundleCourse(course=course, sort_order=i) for i, course in enumerate(members)
            ],
        )
        catalog.add_child(instance=bundle)
        bundle.save_revision().publish()

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
            description=[{"type": "text", "value": "".join(spec["description"])}],
        )
        catalog.add_child(instance=course)
        course.save_revision().publish()
        for number, (module_title, lessons) in enumerate(spec["modules"].items()):
            module = ModulePage(title=module_title, intro=f"<p>{module_title}.</p>")
            if spec["slug"] in WEEKLY_MODULES and number:
                module.release_after_days = 7 * number
            course.add_child(instance=module)
            module.save_revision().publish()
            for position, lesson_spec in enumerate(lessons):
                body = lesson_body(lesson_spec)
                if spec["slug"] in WITH_VIDEO_AND_QUIZ and number == 0 and position == 1:
                    body += [
                        {
                            "type": "stream_video",
                            "value": {"video_uid": DEMO_VIDEO_UID, "caption": "Watch, then try it"},
                        },
                        {"type": "quiz", "value": DEMO_QUIZ},
                    ]
                lesson = LessonPage(
                    title=lesson_spec["title"],
                    summary=lesson_spec["summary"],
                    body=body,
                    estimated_minutes=12,
                    is_free_preview=lesson_spec["preview"],
                )
                module.add_child(instance=lesson)
                lesson.save_revision().publish()
                if position == 0:
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
        return Image.objects.create(
            title=title,
            file=ImageFile(io.BytesIO(cover_png(spec)), name=f"{spec['slug']}-cover.png"),
        )

    def ensure_admin(self, password):
        User = get_user_model()
        user = User.objects.filter(username="admin").first()
        if user is None:
            user = User.objects.create_superuser("admin", ADMIN_EMAIL, password)
        EmailAddress.objects.get_or_create(
            user=user, email=ADMIN_EMAIL, defaults={"verified": True, "primary": True}
        )
