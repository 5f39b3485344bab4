# Two commands on a fresh machine with python3 and make:  `make demo`  and  `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test bench screenshots clean bytecode

# editable_mode=compat: the checkout goes on sys.path through a plain .pth line.  The
# default editable mode installs an import hook that every Python process in the venv
# loads at start-up (pathlib, re, urllib, importlib.util: ~15 ms), which every `keyward`
# call, and each of the test suite's thousands of subprocesses, paid.
COMPAT := --config-settings editable_mode=compat

$(STAMP): pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[test]' $(COMPAT)
	touch $(STAMP)

# keyward's own modules compiled ahead, as pip does for an installed package: an editable
# install has no bytecode, and with PYTHONDONTWRITEBYTECODE set (common in containers and
# CI) every `keyward` process would compile its modules again (a third of a cold call).
bytecode: $(STAMP)
	$(BIN)/python -m compileall -q -j 0 vault tui >/dev/null

demo: bytecode
	$(BIN)/keyward demo

# Three workers on two cores: a third of the suite's time is spent waiting (deadlines,
# idle windows, subprocesses starting), which a third worker fills.  Measured here on a
# 2-core VM, same tree: -n 2 5:07-5:30, -n 3 4:20, -n 4 5:07 (contention).
test: bytecode
	$(BIN)/python -m pytest -n 3 -q

bench: bytecode
	$(BIN)/python -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[test,bench]' $(COMPAT)
	$(BIN)/python -m benchmarks

screenshots: bytecode
	$(BIN)/python -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[test,screenshots]' $(COMPAT)
	$(BIN)/python -m screenshots.make

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .hypothesis
