# confwatch: `make run` runs the whole product, `make test` runs the whole test suite.
VENV ?= .venv
PY := $(VENV)/bin/python
SIM_PORT ?= 8765
WEB_PORT ?= 8000
SIM_RATE ?= 20
MAIL_PORT ?= 8025
SEED ?= $(shell date +%s)
export SIM_PORT WEB_PORT SIM_RATE SEED MAIL_PORT

.PHONY: install services chromium node run test bench bench-alerts bench-throughput bench-admin lint format
.PHONY: bench-callbacks bench-flood bench-conference bench-pages bench-rules bench-desk bench-scale

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

services:
	@scripts/services.sh

chromium:
	@command -v chromium >/dev/null || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }

# The relative-time JavaScript is tested against conferences/text.py in node.
node:
	@command -v node >/dev/null || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q nodejs; }

# Quiet until the login lines: no command echo, no migration list (errors still show).
run: install services
	@$(PY) manage.py migrate --noinput --verbosity 0
	@rm -f var/prometheus/*.db  # the metrics of an earlier run (PROMETHEUS_MULTIPROC_DIR)
	@PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/honcho -f Procfile.demo start

# Most tests wait on a simulator, a worker, a browser or a sleep, not on the CPU: four
# pytest-xdist workers (each with its own Postgres and Redis database) fit two cores.
TEST_WORKERS ?= 4

test: install services chromium node
	$(PY) -m pytest -n $(TEST_WORKERS)

bench: install services
	$(PY) tests/bench/bench_polling.py

bench-alerts: install services
	$(PY) tests/bench/bench_alerts.py

bench-throughput: install services
	$(PY) tests/bench/bench_throughput.py

bench-admin: install services
	$(PY) tests/bench/bench_admin.py

bench-callbacks: install services
	$(PY) tests/bench/bench_callbacks.py

bench-flood: install services
	$(PY) tests/bench/bench_callback_flood.py

bench-conference: install services
	$(PY) tests/bench/bench_conference_page.py

bench-pages: install services
	$(PY) tests/bench/bench_pages.py

bench-rules: install services
	$(PY) tests/bench/bench_rules.py

# A desk's busy hour, every part at once (issue #24); takes --minutes plus setup.
bench-desk: install services
	$(PY) tests/bench/bench_desk.py

bench-scale: install services
	$(PY) tests/bench/bench_scale.py

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

format:
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .
