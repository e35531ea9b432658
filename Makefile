# Every target creates .venv when missing and installs the project into it, so a fresh clone needs nothing else.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint bench bench-full clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/activate
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

$(VENV)/.installed-bench: pyproject.toml | $(BIN)/activate
	$(BIN)/pip install -q -e '.[dev,bench]'
	touch $@

demo: $(VENV)/.installed-dev
	$(BIN)/activestream demo

# promtool and prometheus for the deploy checks come from Debian's package, unpacked into .tools/.
.tools/prometheus/usr/bin/promtool:
	bash deploy/tools/fetch-prometheus.sh

test: $(VENV)/.installed-dev .tools/prometheus/usr/bin/promtool
	$(BIN)/ruff check service tests benchmarks
	$(BIN)/ruff format --check service tests benchmarks
	$(BIN)/pytest

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check service tests benchmarks
	$(BIN)/ruff format --check service tests benchmarks

# `make bench`: the quick versions (a few minutes; CI runs them after the tests as a smoke test, writing
# *_quick.* results). `make bench FULL=1`: the full runs whose results are committed and quoted in README.
FULL ?=
BENCH_MODE := $(if $(FULL),,--quick)

bench: $(VENV)/.installed-bench
	$(BIN)/python benchmarks/field.py $(BENCH_MODE)
	$(BIN)/python benchmarks/cost_scale.py $(BENCH_MODE)
	$(BIN)/python benchmarks/service_throughput.py --matrix $(BENCH_MODE)
	$(BIN)/python benchmarks/fast_paths.py $(BENCH_MODE)

bench-full:
	$(MAKE) bench FULL=1

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info service/*.egg-info
