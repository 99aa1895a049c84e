# The venv lives in .venv; every target that needs it depends on its stamp.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
# This image's pip config names local wheel folders that may not exist; drop only that noise.
QUIET_PIP := { grep -v '^WARNING: Location' || true; }
PYTHON_BOOTSTRAP ?= $(shell for p in $$HOME/.pyenv/versions/3.13.0/bin/python python3.13; do \
	command -v $$p >/dev/null 2>&1 && { echo $$p; break; }; done)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo ha-demo test lint typecheck pytest compat bench clean

$(STAMP): pyproject.toml requirements-test.txt
	@test -n "$(PYTHON_BOOTSTRAP)" || { echo "Python 3.13 not found (looked for ~/.pyenv/versions/3.13.0/bin/python and python3.13)"; exit 1; }
	$(PYTHON_BOOTSTRAP) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip 2>&1 | $(QUIET_PIP)
	$(PY) -m pip install --quiet -r requirements-test.txt 2>&1 | $(QUIET_PIP)
	$(PY) -m pip install --quiet --no-deps -e . 2>&1 | $(QUIET_PIP)
	$(PY) -c "import homeassistant, pytest_homeassistant_custom_component, fleet_metrics.core"
	touch $(STAMP)

# The demo needs only the runtime dependencies and the embedded broker: its own small venv,
# no Home Assistant stack. DEMO_ARGS go to `fleet-metrics demo` (e.g. --listen, --duration).
DEMO_VENV := .venv-demo
DEMO_STAMP := $(DEMO_VENV)/.installed

$(DEMO_STAMP): pyproject.toml
	@test -n "$(PYTHON_BOOTSTRAP)" || { echo "Python 3.13 not found (looked for ~/.pyenv/versions/3.13.0/bin/python and python3.13)"; exit 1; }
	$(PYTHON_BOOTSTRAP) -m venv $(DEMO_VENV)
	$(DEMO_VENV)/bin/python -m pip install --quiet -e '.[demo]' 2>&1 | $(QUIET_PIP)
	touch $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	@$(DEMO_VENV)/bin/fleet-metrics demo $(DEMO_ARGS)

# A real Home Assistant (the pinned version) with the simulated fleet added through its config
# flows; its own venv (.venv-ha, built once by the script) and config (build/ha-demo). Not part
# of `test`. HA_DEMO_ARGS go to scripts/ha_demo.py (e.g. --port 0, --country DE).
ha-demo:
	@test -n "$(PYTHON_BOOTSTRAP)" || { echo "Python 3.13 not found (looked for ~/.pyenv/versions/3.13.0/bin/python and python3.13)"; exit 1; }
	@$(PYTHON_BOOTSTRAP) scripts/ha_demo.py $(HA_DEMO_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# mypy cannot follow the editable install's package-dir mapping: check the runner through a
# tree of links laid out as the installed package `fleet_metrics` (standalone + core).
typecheck: $(STAMP)
	$(VENV)/bin/mypy custom_components/fleet_metrics
	rm -rf $(VENV)/typecheck && mkdir -p $(VENV)/typecheck/fleet_metrics
	ln -s $(CURDIR)/standalone/*.py $(VENV)/typecheck/fleet_metrics/
	ln -s $(CURDIR)/standalone/simulators $(VENV)/typecheck/fleet_metrics/simulators
	ln -s $(CURDIR)/custom_components/fleet_metrics/core $(VENV)/typecheck/fleet_metrics/core
	MYPYPATH=$(VENV)/typecheck $(VENV)/bin/mypy -p fleet_metrics

pytest: $(STAMP)
	$(PY) -m pytest -p no:cacheprovider $(PYTEST_ARGS)

test: lint typecheck pytest

# Core tests without Home Assistant, on the libraries HA 2026.11 bundles (own venv in build/).
compat:
	scripts/compat-core-tests.sh $(PYTEST_ARGS)

# TickrMeter at fleet scale through a real Mosquitto; prints rates, CPU, loss, RSS, render times.
# Then Proxmox collection, 1,000 agents against the runner (its PASS/FAIL lines say which
# target is missed; the other benches still run), the agent on this host, and the server's
# instructions per agent batch (valgrind).
bench: $(STAMP)
	$(PY) -m bench.tickrmeter $(BENCH_ARGS)
	$(PY) -m bench.proxmox
	-$(PY) -m bench.agents
	$(PY) -m bench.agent_host
	$(PY) -m bench.agent_instructions

clean:
	rm -rf $(VENV) $(DEMO_VENV) .venv-ha build/ha-demo
