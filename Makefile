# Keyplane — the two commands: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: venv browser test test-all lint typecheck demo bench bench-small bench-ledger bench-authzen bench-decide bench-tokens bench-posture bench-gateway openapi clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,bench]'
	touch $(STAMP)

venv: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

# headless Chromium (Debian's package) for the test that opens the HTML posture report;
# installed when missing and this runs as root with apt, else the test says what is missing
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 \
	  || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
	       && echo "make: installing chromium (apt)" \
	       && (DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1 \
	           || (apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null)); } \
	  || echo "make: chromium is not installed and could not be; the HTML report test will fail"

test: lint typecheck browser
	$(BIN)/pytest

test-all: lint typecheck browser
	$(BIN)/pytest -m ''

# regenerate the committed OpenAPI document (tests/api/test_api_openapi.py checks it)
openapi: $(STAMP)
	$(BIN)/python -m keyplane.api.openapi docs/openapi.json

demo: $(STAMP)
	$(BIN)/python -m keyplane.demo

bench: $(STAMP)
	$(BIN)/python bench/run.py

bench-small: $(STAMP)
	$(BIN)/python bench/run.py --small

# the provenance ledger: durable events/s, checks with the ledger off/sync/async, lost events
bench-ledger: $(STAMP)
	$(BIN)/python bench/ledger.py

# the decision point in-process on ~1M tuples: check vs decide (2-hop chain, 3 guardrails), ledger off/sync/async
bench-decide: $(STAMP)
	$(BIN)/python bench/decide.py

# AuthZEN over HTTP on one server process: evaluations/s, p50/p99, batch decisions/s
bench-authzen: $(STAMP)
	$(BIN)/python bench/authzen_http.py

# access tokens: issued/s (client_credentials, exchange) in-process and over HTTP, verified/s,
# revoke -> deny in-process and across two processes on PostgreSQL (p50 / max)
bench-tokens: $(STAMP)
	$(BIN)/python bench/tokens.py

# governance analytics on the 1M-tuple organisation with a month of ledger data: posture
# report, over-privilege, agents exceeding owners, effective access (seconds each)
bench-posture: $(STAMP)
	$(BIN)/python bench/posture.py

# the MCP gateway: an echo tool called directly and through the gateway (p50/p99, calls/s, the
# added latency) and where the gateway's own time goes (stage timers; --profile for cProfile)
bench-gateway: $(STAMP)
	$(BIN)/python bench/gateway.py --profile

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
