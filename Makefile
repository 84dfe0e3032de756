# The course's commands. Two of them are all a fresh machine needs:
#   make lab    set everything up, then open the course in JupyterLab (students)
#   make test   set everything up, then run the whole test suite (CI runs this)
# Instructors: make release | execute | grade SUBMISSIONS=folder

VENV   ?= .venv
PY     := $(VENV)/bin/python
PYTHON ?= python3
# The CPU build of torch lies on this course's machines; elsewhere pip takes it from PyPI.
WHEELS ?= /opt/wheels
FIND_LINKS := $(if $(wildcard $(WHEELS)/torch-2.13.0*),--find-links $(WHEELS),)

# Nothing from a model hub; no OpenMP spin-waiting (two threads stall fresh processes);
# Jupyter, IPython and matplotlib keep their state under build/, not in $HOME.
export HF_HUB_OFFLINE := 1
export OMP_WAIT_POLICY := PASSIVE
export TOKENIZERS_PARALLELISM := false
export JUPYTER_CONFIG_DIR := $(CURDIR)/build/jupyter/config
export JUPYTER_DATA_DIR := $(CURDIR)/build/jupyter/data
export JUPYTER_RUNTIME_DIR := $(CURDIR)/build/jupyter/runtime
export IPYTHONDIR := $(CURDIR)/build/ipython
export MPLCONFIGDIR := $(CURDIR)/build/matplotlib

.PHONY: setup lab test release execute grade figs bench bench-grading browser clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet $(FIND_LINKS) torch==2.13.0
	$(PY) -m pip install --quiet $(FIND_LINKS) -e '.[dev]'
	touch $@

lab: setup
	$(VENV)/bin/jupyter lab notebooks/

# The browser that tests/test_browser.py drives: Debian's Chromium from apt (never a
# browser download by Playwright).
browser:
	bash scripts/install_browser.sh

test: setup browser
	$(PY) -m pytest

release: setup
	$(PY) -m autograder release

execute: setup
	$(PY) -m autograder execute

SUBMISSIONS ?= submitted
WORKERS ?= 2
# GRADE_OPTS="--cluster local:4" or "--scheduler tcp://HOST:8786" grades on Dask instead
GRADE_OPTS ?= --workers $(WORKERS)
grade: setup
	$(PY) -m autograder grade $(SUBMISSIONS) --out build/grades.csv $(GRADE_OPTS)

clean:
	rm -rf build

# Every figure a notebook shows is made by a script in figs/src/ (deterministic output).
figs: setup
	for f in figs/src/*.py; do $(PY) $$f || exit 1; done

# Benchmarks write bench/results/<machine>.json and .md; run them on a quiet machine.
bench: setup
	$(PY) bench/run.py

# the grader over the whole course: plain against graded, 1 and 2 workers, the local pool against Dask
bench-grading: setup
	$(PY) bench/grading.py --backend dask
