# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv on first use
# and install the exact pins of requirements.lock into it.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# keep DDS traffic of demos and tests on this machine
export ROS_AUTOMATIC_DISCOVERY_RANGE ?= LOCALHOST

.PHONY: venv sysdeps browser demo test test-core bench lerobot-check lint lock clean

# MuJoCo renders the simulated cameras off screen with OSMesa (Debian: libosmesa6).
sysdeps:
	@ldconfig -p 2>/dev/null | grep -q libOSMesa || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && apt-get install -y -qq libosmesa6 >/dev/null) || \
	      echo "warning: could not install libosmesa6; simulated cameras will not render"; \
	  else echo "warning: libOSMesa missing; run: sudo apt-get install libosmesa6"; fi; }

# The console's browser test drives Debian's chromium through chromium-driver (make test only).
browser:
	@command -v chromedriver >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null) || \
	      echo "warning: could not install chromium; the console's browser test will skip"; \
	  else echo "warning: no chromedriver; run: sudo apt-get install chromium chromium-driver"; fi; }

$(STAMP): requirements.lock pyproject.toml setup.py
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || { \
	  echo "python -m venv unavailable (Debian: apt-get install python3-venv); using virtualenv"; \
	  $(PYTHON) -m pip install --user --quiet virtualenv && $(PYTHON) -m virtualenv $(VENV); }
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps \
	  --no-build-isolation -e .
	@touch $(STAMP)

venv: $(STAMP)

demo: venv sysdeps
	$(BIN)/gigabrain-runtime demo

# Two pytest-xdist workers: the ROS graph tests mostly wait on events while the export and
# training tests compute, so a second worker fills the idle core (TEST_WORKERS=0: one process).
# A test file runs whole on one worker (some files' tests build on one another, in order).
# A worker that crashes is not replaced: the run ends there, naming the test it crashed in
# (xdist 3.8's replacement of a crashed worker can wait forever under --dist loadfile:
# pytest-xdist issue 784; CI once hung so until its time ran out). --capture=sys: what native
# code writes to stderr (glibc's, LLVM's, Mesa's last words before an abort) reaches the log;
# the tests' own processes write to their log files, so a passing run prints next to nothing more.
TEST_WORKERS ?= 2
test: venv sysdeps browser
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile --max-worker-restart 0 \
	  --capture=sys --durations=25 $(PYTEST_ARGS)

# The pure tests (4 min on 2 cores, 2026-12-06): no rclpy or DDS graph (marker ros), no engine
# export (marker slow); tests/conftest.py sets both markers. sysdeps: the kinematics tests render
# the simulator.
test-core: venv sysdeps
	$(BIN)/python -m pytest -q -m "not ros and not slow" $(PYTEST_ARGS)

# bag export checked with the real LeRobot (own venv .venv-lerobot, ~8 GB, see the script)
lerobot-check: venv
	benchmarks/lerobot/run.sh

bench: venv
	$(BIN)/gigabrain-runtime bench --preset tiny --backends torch,onnxruntime \
	  --modes efficient,standard --runs 200 --json benchmarks/tiny_cpu.json
	$(BIN)/gigabrain-runtime bench-control --seconds 20 --json benchmarks/control_jitter_cpu.json

lint: venv
	$(BIN)/ruff check gigabrain_runtime tests

# Re-resolve the pins from pyproject's dependencies (needs the registries).
lock:
	rm -rf /tmp/gigabrain-lock && $(PYTHON) -m venv /tmp/gigabrain-lock
	/tmp/gigabrain-lock/bin/pip install --quiet torch==2.13.0 -e '.[ros,test]' ruff
	/tmp/gigabrain-lock/bin/pip freeze --exclude-editable | grep -v '^gigabrain' | \
	  $(PYTHON) tools/filter_lock.py > requirements.lock

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
