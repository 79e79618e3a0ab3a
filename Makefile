# Glowing Fiesta — `make help` lists the targets.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app app
STAMP := $(VENV)/.installed
# `KEY=$$(make -s api-key …)` must print only the key, even when run from another make.
MAKEFLAGS += --no-print-directory

.DEFAULT_GOAL := help
.PHONY: help setup run migrate api-key worker scheduler test lint services bench bench-query \
	bench-ingest bench-retention bench-alerts bench-clickhouse clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(STAMP): setup.cfg pyproject.toml
	@bash scripts/setup.sh "$(PYTHON)" "$(VENV)"

setup: $(STAMP) ## Create .venv with the pinned dependencies

run: setup migrate ## Serve on HOST:PORT (default 127.0.0.1:8000) through gunicorn
	$(BIN)/gunicorn --config gunicorn.conf.py

migrate: setup ## Apply the sql/ migrations to DATABASE_URL (safe to re-run)
	@$(FLASK) db migrate

api-key: ## Create an API key: make api-key NAME="My App" [RATE=1000] [SCOPE=read|write|admin] [TENANT=default]
	@test -n "$(NAME)" || { echo 'usage: make api-key NAME="My App" [RATE=1000] [SCOPE=read|write|admin] [TENANT=default]' >&2; exit 2; }
	@$(MAKE) migrate
	@$(FLASK) keys create --name "$(NAME)" $(if $(RATE),--rate "$(RATE)") $(if $(SCOPE),--scope "$(SCOPE)") $(if $(TENANT),--tenant "$(TENANT)")

# One ingest worker per drain slot (QUEUE_DRAINERS, default 2: the setting's default in
# app/config.py) and one maintenance worker. On INT or TERM each worker gets a TERM (RQ's warm
# shutdown) and make waits for them; `kill 0` would signal make's own shell again and again.
worker: setup migrate ## RQ workers: QUEUE_DRAINERS on the ingest queue, one on maintenance
	@pids=""; \
	trap 'trap "" INT TERM; kill -TERM $$pids 2>/dev/null; wait' INT TERM; \
	for slot in $$(seq $${QUEUE_DRAINERS:-2}); do \
		$(FLASK) jobs worker --queue ingest & pids="$$pids $$!"; \
	done; \
	$(FLASK) jobs worker --queue maintenance & pids="$$pids $$!"; \
	wait

scheduler: setup migrate ## rq-scheduler with the maintenance schedule (registered idempotently)
	$(FLASK) jobs scheduler

services: ## Make sure MariaDB and Redis run on loopback (installs them when absent, as root)
	@bash scripts/services.sh

test: setup services ## Run the tests against real MariaDB and Redis
	@bash scripts/packages.sh chromium=chromium chromedriver=chromium-driver promtool=prometheus \
		nginx=nginx node=nodejs npm=npm
	$(BIN)/pytest $(PYTEST_ARGS)

bench: bench-query bench-ingest bench-retention bench-alerts bench-clickhouse ## Every benchmark

bench-ingest: setup services ## Ingest throughput beside bare-HTTP and executemany ceilings (BENCH_ARGS=…)
	@bash scripts/packages.sh wrk=wrk
	$(BIN)/python scripts/bench_ingest.py $(BENCH_ARGS)

bench-retention: setup services ## 1 M expired rows trimmed under ingest load: rows/s, p99 beside p99 without (BENCH_ARGS=…)
	@bash scripts/packages.sh wrk=wrk
	$(BIN)/python scripts/bench_retention.py $(BENCH_ARGS)

bench-clickhouse: setup services ## ClickHouse's insert rate (in process, 1,000-point inserts) beside MariaDB's executemany ceiling (BENCH_ARGS=…)
	$(BIN)/python scripts/clickhouse_ceiling.py $(BENCH_ARGS)

bench-alerts: setup services ## One alert evaluation tick over 1,000 alerts on MariaDB: seconds (BENCH_ARGS=…)
	$(BIN)/python scripts/bench_alerts.py $(BENCH_ARGS)

bench-query: setup services ## Query latency over 10 M points, HTTP vs direct SQL, with tags, percentiles, ClickHouse (BENCH_ARGS=…)
	$(BIN)/python scripts/bench_query.py $(BENCH_ARGS)

lint: setup ## ruff
	$(BIN)/ruff check app tests scripts gunicorn.conf.py

clean: ## Remove the virtualenv, the embedded database and caches
	rm -rf $(VENV) var .pytest_cache
