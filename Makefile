# Two commands on a fresh machine: `make run` and `make test`. Everything they need
# (virtualenv, packages) is installed by the targets themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.run-installed
DEV_STAMP := $(VENV)/.dev-installed
CHROMIUM_STAMP := $(VENV)/.chromium-installed
PROMTOOL_STAMP := $(VENV)/.promtool-installed
PKGS := daemon actors adapters config

.PHONY: run test lint typecheck unit soak chaos bench clean

$(BIN)/python:
	$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "aaiti needs Python >= 3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@ $(RUN_STAMP)

# The backtest report's browser test drives Debian's chromium (Playwright cannot download its
# own browser offline). Installed as root, only when missing; `make run` never needs it.
$(CHROMIUM_STAMP): | $(BIN)/python
	if [ ! -x /usr/bin/chromium ]; then \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; \
	fi
	touch $@

# The observability tests run promtool (check/test the alert rules) from Debian's prometheus
# package, installed as root only when missing. Installing it must not leave a Prometheus
# server behind: the service is stopped and disabled, and any prometheus process that the
# install started (not one that ran before) is ended by its pid.
$(PROMTOOL_STAMP): | $(BIN)/python
	if ! command -v promtool >/dev/null 2>&1; then \
		before=" $$(pgrep -x prometheus | tr '\n' ' ')"; \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus || exit 1; \
		if [ -d /run/systemd/system ]; then systemctl stop prometheus.service || true; fi; \
		if command -v systemctl >/dev/null 2>&1; then systemctl disable prometheus.service || true; fi; \
		if [ -x /etc/init.d/prometheus ]; then \
			/etc/init.d/prometheus stop || true; update-rc.d prometheus disable || true; \
		fi; \
		for pid in $$(pgrep -x prometheus); do \
			case "$$before" in *" $$pid "*) ;; *) kill "$$pid" || true ;; esac; \
		done; \
	fi
	touch $@

run: $(RUN_STAMP)
	$(BIN)/aaiti run --config aaiti.toml

test: $(DEV_STAMP) $(CHROMIUM_STAMP) $(PROMTOOL_STAMP)
	$(BIN)/ruff check $(PKGS) tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache
	$(BIN)/pytest -q -m "not slow"

unit: $(DEV_STAMP)
	$(BIN)/pytest -m "not slow" tests/unit

soak: $(DEV_STAMP)
	$(BIN)/python bench/soak.py

chaos: $(DEV_STAMP)
	$(BIN)/pytest -m slow tests/chaos

bench: $(DEV_STAMP)
	$(BIN)/python bench/channels.py
	$(BIN)/python bench/feed.py
	$(BIN)/python bench/replay.py
	$(BIN)/python bench/backtest.py
	$(BIN)/python bench/latency.py
	$(BIN)/python bench/triggers.py
	$(BIN)/python bench/admin_load.py
	$(BIN)/python bench/venue.py
	$(BIN)/python bench/sweep.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache state
