# provguard: the two commands of the README, and the pieces they are made of.
#   make demo   sets everything up and shows the leak gate on a development and a release image
#   make test   runs every quality gate and test suite (what CI runs)

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BUILD ?= build
UNIT_BUILD := $(BUILD)/unit-tests
C_SOURCES := $(wildcard app/src/*.c app/src/*.h)

.PHONY: all setup demo test lint format-check unit-c pytest compat bench mutation mutation-c clean

all: test

## setup: Debian tools (if missing) and a virtual environment with provguard installed editable
setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	.ci/install-deps
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

## demo: throwaway PKI -> check -> certificates.h -> dev and release ARM images -> scan both
demo: setup
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" demo/run.sh $(BUILD)/demo

## test: lint, types, C style, host C unit tests, pytest
test: setup lint format-check unit-c pytest

lint: setup
	$(VENV)/bin/ruff check scripts tests
	$(VENV)/bin/ruff format --check scripts tests
	$(VENV)/bin/mypy

format-check:
	@if [ -n "$(C_SOURCES)" ]; then clang-format --dry-run -Werror $(C_SOURCES); fi

unit-c:
	@if [ -f tests/unit/CMakeLists.txt ]; then \
		cmake -S tests/unit -B $(UNIT_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Debug >/dev/null && \
		cmake --build $(UNIT_BUILD) && \
		ctest --test-dir $(UNIT_BUILD) --output-on-failure; \
	fi

# pytest exits 5 when it collected no test: that is not a failure of the gate, say so instead.
pytest: setup
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) -m pytest; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest: no tests collected"; exit 0; fi; exit $$rc

## compat: pytest on the oldest Python pyproject admits and the newest there is, each in a venv of
# its own (build/compat-*): SQLAlchemy (2.0 on 3.10), zipfile and ssl behave differently there.
# An interpreter that is missing fails the target (2): a check that did not run is not a pass.
COMPAT_PYTHONS ?=
compat:
	.ci/compat $(COMPAT_PYTHONS)

## bench: the scan benchmark (issue 10's figures), then enrollment of 16 simulated modems against one
bench: setup
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) benchmarks/scan_bench.py
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) benchmarks/enroll_bench.py
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) benchmarks/enroll_bench.py --baud 115200

## mutation: mutmut over the core (not part of `make test`: minutes per part); MODULE=at runs one
# part (at, credentials, render, provision, probe, enroll, scan = scan-keys, scan-readers, scan-containers,
# scan-engine, scan-report; see tests/mutation/modules.py). Without MODULE, `make mutation-c` (the C mutations
# of app/src) runs after it when that target exists.
MODULE ?=
mutation: setup
	@rc=0; PATH="$(CURDIR)/$(VENV)/bin:$$PATH" nice -n 10 $(PY) tests/mutation/run.py $(if $(MODULE),--module $(MODULE)) || rc=$$?; \
	if [ -z "$(MODULE)" ] && $(MAKE) -n mutation-c >/dev/null 2>&1; then \
		nice -n 10 $(MAKE) --no-print-directory mutation-c || { [ $$rc -ne 0 ] || rc=1; }; \
	fi; exit $$rc

## mutation-c: C mutations of app/src against the host unit tests (tests/mutation/c_mutate.py)
mutation-c: setup
	nice -n 10 $(PY) tests/mutation/c_mutate.py

clean:
	rm -rf $(BUILD)
