# make run     the default experiment (creates .venv and installs gdrun on first use)
# make test    the test suite
# make bench   the speed benchmark (bench/README.md)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test,parallel,slurm,optuna,tensorboard,mlflow]"
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/gdrun

# The linters and the type checker first (seconds), then the suite. One torch thread: the
# suite's models are tiny, and threads only fight over two cores.
test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	OMP_NUM_THREADS=1 $(PY) -m pytest -q

bench: $(STAMP)
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) build *.egg-info
