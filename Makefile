# The two commands of the README:  make demo   and   make test
# Each creates .venv (Python 3.10) when missing and installs the pinned stack once;
# a second run with nothing changed reinstalls nothing (the stamp file is newer than pyproject.toml).
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.qblif-installed
FMNIST := /usr/share/datasets/fashion-mnist

.PHONY: setup demo test bench clean-venv
setup: $(STAMP)

$(STAMP): pyproject.toml
	@bash scripts/setup.sh
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/qblif demo

test: $(STAMP)
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) bench/bench_process.py

clean-venv:
	rm -rf $(VENV)
