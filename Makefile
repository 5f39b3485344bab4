# Two commands on a fresh machine with python3 and make:  `make demo`  and  `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test bench screenshots clean bytecode

$(STAMP): pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[test]'
	touch $(STAMP)

# keyward's own modules compiled ahead, as pip does for an installed package: an editable
# install has no bytecode, and with PYTHONDONTWRITEBYTECODE set (common in containers and
# CI) every `keyward` process would compile its modules again (a third of a cold call).
bytecode: $(STAMP)
	$(BIN)/python -m compileall -q -j 0 vault tui >/dev/null

demo: bytecode
	$(BIN)/keyward demo

test: bytecode
	$(BIN)/python -m pytest -n 2 -q

bench: bytecode
	$(BIN)/python -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[test,bench]'
	$(BIN)/python -m benchmarks

screenshots: bytecode
	$(BIN)/python -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[test,screenshots]'
	$(BIN)/python -m screenshots.make

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .hypothesis
