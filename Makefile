# The two commands a newcomer runs: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The second line of CI's support matrix uses its own interpreter, venv and lock:
# `make test PYTHON=…/python3.13 VENV=.venv313 DEV_LOCK=requirements-py313.lock`.
DEV_LOCK ?= requirements-dev.lock
PORT ?= 8000
STRIPE_PORT ?= 12111
# Links in e-mails, Stripe's return pages and certificates point at the port the demo serves.
SITE_URL ?= http://127.0.0.1:$(PORT)
DEMO_ENV := DEBUG=1 SITE_URL=$(SITE_URL)

.PHONY: install demo test lint format bench browser fonts cluster-tools cluster lock prod-deps clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Development installs requirements-dev.lock (the production pins plus the test and lint tools);
# a production deploy installs requirements.lock alone.
$(VENV)/.installed: $(DEV_LOCK) requirements.lock pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r $(DEV_LOCK)
	touch $@

install: $(VENV)/.installed

# Sets everything up on the embedded defaults and serves the demo site on 127.0.0.1:$(PORT)
# (the local Stripe emulator on 127.0.0.1:$(STRIPE_PORT)); Ctrl-C stops every process it started.
demo: install
	$(DEMO_ENV) $(BIN)/python manage.py migrate --noinput
	$(DEMO_ENV) $(BIN)/python manage.py seed_demo
	$(DEMO_ENV) $(BIN)/python manage.py seed_demo_plan
	$(DEMO_ENV) $(BIN)/python manage.py setup_schedules
	$(DEMO_ENV) $(BIN)/python -m devtools.demo --port $(PORT) --stripe-port $(STRIPE_PORT)

# The whole test suite (SQLite by default; set DATABASE_URL for PostgreSQL).
test: install browser fonts cluster-tools node_modules/.installed
	$(BIN)/python -m pytest

# Test-only npm tools (s3rver enforces presigned-URL expiry), pinned by package-lock.json.
node_modules/.installed: package.json package-lock.json
	npm ci --silent --no-audit --no-fund
	touch $@

# Debian's Chromium for the browser journeys (never `playwright install`), where the tests look
# for it. Installed: nothing to do, nothing printed. Missing: says so, then installs it with apt.
CHROMIUM ?= $(or $(shell command -v chromium 2>/dev/null),/usr/bin/chromium)
browser:
	@if [ ! -x "$(CHROMIUM)" ]; then \
		echo "make browser: no Chromium at $(CHROMIUM); the browser journeys (tests/e2e) need it," \
			"so installing Debian's chromium package with apt-get now"; \
		if [ "$$(id -u)" = 0 ]; then as_root=; else as_root=sudo; fi; \
		{ $$as_root apt-get update -qq && $$as_root apt-get install -y -qq chromium >/dev/null; } \
			|| echo "make browser: chromium could not be installed; the browser journeys will be skipped"; \
	fi

# DejaVu Sans prints certificates in any script (learner/certificates.py); without it they fall
# back to PDF's Helvetica. Installed: nothing to do, nothing printed.
DEJAVU := /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf
fonts:
	@if [ ! -f "$(DEJAVU)" ]; then \
		echo "make fonts: no DejaVu Sans; installing Debian's fonts-dejavu-core with apt-get"; \
		if [ "$$(id -u)" = 0 ]; then as_root=; else as_root=sudo; fi; \
		{ $$as_root apt-get update -qq && $$as_root apt-get install -y -qq fonts-dejavu-core >/dev/null; } \
			|| echo "make fonts: fonts-dejavu-core could not be installed; certificates use Helvetica"; \
	fi

# HAProxy and Redis for the cluster run (tests/test_cluster.py, make cluster), from Debian's
# packages when missing; installed: nothing to do, nothing printed.
cluster-tools:
	@for tool in haproxy:haproxy redis-server:redis-server; do \
		bin=$${tool%%:*}; pkg=$${tool##*:}; \
		if ! command -v $$bin >/dev/null 2>&1; then \
			echo "make cluster-tools: $$bin is missing; installing Debian's $$pkg with apt-get"; \
			if [ "$$(id -u)" = 0 ]; then as_root=; else as_root=sudo; fi; \
			{ $$as_root apt-get update -qq && $$as_root apt-get install -y -qq $$pkg >/dev/null; } \
				|| echo "make cluster-tools: $$pkg could not be installed; the cluster run will be skipped"; \
		fi; \
	done

# Two web nodes behind HAProxy, two task clusters on Redis, PostgreSQL, the Stripe emulator, on
# the production settings; 300 purchases while a node, a worker and Redis are killed (~2 min).
cluster: install cluster-tools
	$(BIN)/python -m devtools.cluster --purchases $(or $(PURCHASES),300)

# ruff; mypy on the payment and access services (`files` under [tool.mypy] in pyproject.toml);
# no model change without its migration.
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	DEBUG=1 $(BIN)/python manage.py makemigrations --check --dry-run

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Regenerates both locks after a change to pyproject.toml: production first, then development
# constrained to the production pins so the two always agree.
lock: | $(BIN)/python
	$(BIN)/pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --python-version 3.11 -o requirements.lock
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 \
		--constraint requirements.lock -o requirements-dev.lock
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.13 \
		-o requirements-py313.lock

# Proves requirements.lock alone runs the site: a throwaway venv, checks, imports (~1 minute).
prod-deps:
	bash .ci/prod-deps

# The targets table compares with a run of the same script on the code before issue 15.
BENCH_BEFORE ?= docs/bench/before-issue-15.json
bench: install
	$(BIN)/python -m bench.run $(if $(wildcard $(BENCH_BEFORE)),--before $(BENCH_BEFORE))

clean:
	rm -rf $(VENV) db.sqlite3 media .test-media staticfiles node_modules
