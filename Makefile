# The two commands a newcomer runs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_ENV := DEBUG=1
PORT ?= 8000
STRIPE_PORT ?= 12111

.PHONY: install demo test lint format bench browser clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.lock pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	touch $@

install: $(VENV)/.installed

# Sets everything up on the embedded defaults and serves the demo site on 127.0.0.1:$(PORT)
# (the local Stripe emulator on 127.0.0.1:$(STRIPE_PORT)); Ctrl-C stops every process it started.
demo: install
	$(DEMO_ENV) $(BIN)/python manage.py migrate --noinput
	$(DEMO_ENV) $(BIN)/python manage.py seed_demo
	$(DEMO_ENV) $(BIN)/python manage.py setup_schedules
	$(DEMO_ENV) $(BIN)/python -m devtools.demo --port $(PORT) --stripe-port $(STRIPE_PORT)

# The whole test suite (SQLite by default; set DATABASE_URL for PostgreSQL).
test: install browser node_modules/.installed
	$(BIN)/python -m pytest

# Test-only npm tools (s3rver enforces presigned-URL expiry), pinned by package-lock.json.
node_modules/.installed: package.json package-lock.json
	npm ci --silent --no-audit --no-fund
	touch $@

# Debian's Chromium for the browser journeys (never `playwright install`).
browser:
	@command -v chromium >/dev/null 2>&1 || command -v /usr/bin/chromium >/dev/null 2>&1 || \
		( (apt-get update -qq && apt-get install -y -qq chromium) >/dev/null 2>&1 || \
		  sudo sh -c 'apt-get update -qq && apt-get install -y -qq chromium' ) || \
		echo "chromium could not be installed; browser journeys will be skipped"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	DEBUG=1 $(BIN)/python manage.py makemigrations --check --dry-run

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) db.sqlite3 media .test-media staticfiles node_modules
