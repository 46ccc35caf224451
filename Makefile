# The two things a newcomer runs (README.md): `make demo` and `make test`.
# Both set up a local virtual environment first (CPU build of torch 2.13.0; no GPU needed).
PYTHON ?= python3
VENV ?= .venv

.PHONY: demo test setup

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install torch==2.13.0 -e ".[dev,export]"
	touch $@

demo: setup
	$(VENV)/bin/heatpose demo

test: setup
	$(VENV)/bin/ruff check heatpose tests benchmarks
	$(VENV)/bin/python -m pytest -n 2 -q
