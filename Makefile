# GymLedger: `make run` and `make test` are the only set-up a fresh machine needs.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed-stamp

.PHONY: install run test test-reliability fuzz coverage test-fast lint format migrate rebuild backup restore lock clean bench soak image image-smoke

$(STAMP): pyproject.toml requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c requirements.lock -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

## Start API (HOST/PORT, default 127.0.0.1:8000), projector and mail worker; Ctrl-C stops all.
run: install
	$(PY) -m workers.cli run

## The whole suite: unit, integration (real PostgreSQL, Redis, SMTP) and end-to-end over HTTP.
test: install
	$(PY) -m pytest $(PYTEST_ARGS)

## The whole suite with coverage (subprocesses included) and the 85% gate of hosted CI.
coverage: install
	$(PY) -m pytest --cov --cov-report=term-missing:skip-covered --cov-fail-under=85 $(PYTEST_ARGS)

## The reliability suites at full size (kills, races, hostile input); `make test` runs them short.
test-reliability: install
	RELIABILITY=full $(PY) -m pytest tests/reliability $(PYTEST_ARGS)

## Repeat the PostgreSQL restart under load SOAK_RUNS times (default 50); snapshots of
## any stall (pg_stat_activity, pg_locks, py-spy dumps) land in .data/soak/.
SOAK_RUNS ?= 50
soak: install
	SOAK_RUNS=$(SOAK_RUNS) $(PY) -m pytest tests/reliability/test_postgres_restart.py -k "not outage" $(PYTEST_ARGS)

## Build infra/deploy/Dockerfile with docker or podman (a Debian-made base where no registry is reachable).
image:
	infra/deploy/build-image.sh

## Build the image, then run migrations, API, projector and worker from it as uid 10001
## against real PostgreSQL and Redis, end to end (needs root; not part of CI).
image-smoke: install image
	$(PY) -m infra.deploy.image_smoke

## The contract fuzz run at full length: schemathesis --checks all, every phase, 200
## examples per operation, a fresh seed each time (FUZZ_SEED=n to repeat one).
fuzz: install
	RELIABILITY=full $(PY) -m pytest tests/reliability/test_schemathesis.py -s $(PYTEST_ARGS)

## Unit tests only (no servers).
test-fast: install
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

migrate: install
	$(PY) -m workers.cli migrate

## Rebuild every read table from the full event log (never re-sends mail).
rebuild: install
	$(PY) -m workers.cli projections rebuild

## Back up the event log, outbox and audit chain (BACKUP_DIR, default backups/<time>).
BACKUP_DIR ?= backups/$(shell date -u +%Y%m%dT%H%M%SZ)
backup: install
	$(PY) -m workers.cli backup $(BACKUP_DIR)

## Restore into an empty database, then rebuild the read model: make restore BACKUP_DIR=...
restore: install
	$(PY) -m workers.cli restore $(BACKUP_DIR)

## Refresh pinned versions after changing dependencies in pyproject.toml.
lock:
	$(PY) -m pip freeze --exclude-editable | grep -v '^gymledger' > requirements.lock

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

## Benchmarks (see bench/README.md): BENCH_SCALES, BENCH_SECONDS, BENCH_API_WORKERS.
bench: install
	command -v wrk >/dev/null || (apt-get install -y -q wrk || sudo apt-get install -y -q wrk)
	command -v pgbench >/dev/null || (apt-get install -y -q postgresql-client || sudo apt-get install -y -q postgresql-client)
	$(PY) bench/run.py
