# The course's commands. Two of them are all a fresh machine needs:
#   make lab    set everything up, then open the course in JupyterLab (students)
#   make test   set everything up, then lint and run the whole test suite (CI runs this)
#   make lint   ruff over the code ([tool.ruff] in pyproject.toml)
# While working: make test-fast (no browser, hub, whole-notebook runs or slow tests; README "Tests")
# Instructors: make release | execute | grade SUBMISSIONS=folder | report | hub ROSTER=roster.csv | bench
# A CUDA machine: make setup-gpu, then scripts/gpu_check.sh --require-cuda

EXTRAS := [dev]
include scripts/course.mk

.PHONY: test test-fast lint setup-gpu release execute grade figs report bench bench-grading bench-hub browser hub-deps hub clean student solutions

# The CUDA run's environment (issue 18), in the same $(VENV), on top of `make setup`:
#  1. torch 2.13.0's CUDA build. PyPI's Linux x86_64 torch is one (CUDA bundled as nvidia-*
#     wheels); TORCH_INDEX=<a PyTorch CUDA wheel index> picks another CUDA version. A CPU
#     build already there is replaced, and the target fails unless torch.version.cuda is set.
#  2. the kernels' build tools: mamba-ssm's and causal-conv1d's setup.py import torch, so they
#     are installed without pip's build isolation.
#  3. the `gpu` extra of pyproject.toml: mamba-ssm and causal-conv1d at their pinned versions,
#     then a check that both import. Build requirements and times: bench/README.md.
TORCH_INDEX ?=
GPU_BUILD_TOOLS := setuptools==84.2.1 wheel==0.48.0 packaging==26.4 ninja==1.13.2

setup-gpu: $(VENV)/.installed-gpu

$(VENV)/.installed-gpu: $(VENV)/.installed pyproject.toml
	$(PY) -c 'import sys, torch; sys.exit(torch.version.cuda is None)' || $(PY) -m pip uninstall --quiet --yes torch
	$(PY) -m pip install --quiet $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX),) torch==2.13.0
	$(PY) -c 'import sys, torch; torch.version.cuda or sys.exit(f"setup-gpu: torch {torch.__version__} is a CPU build; set TORCH_INDEX to a PyTorch CUDA index")'
	$(PY) -m pip install --quiet $(GPU_BUILD_TOOLS)
	$(PY) -m pip install --no-build-isolation -e '.[dev,gpu]'
	$(PY) -c 'import torch, mamba_ssm, causal_conv1d; print("setup-gpu: torch", torch.__version__, "CUDA", torch.version.cuda, "| mamba-ssm", mamba_ssm.__version__, "| causal-conv1d", causal_conv1d.__version__)'
	touch $@


# The browser that tests/notebooks/test_browser.py drives: Debian's Chromium from apt (never a
# browser download by Playwright).
browser:
	bash scripts/install_browser.sh

# What the course hub needs from Debian: configurable-http-proxy, postgresql, python3-venv.
hub-deps:
	bash scripts/install_hub.sh

# ruff (pinned in the dev extra): pycodestyle, pyflakes, import order, bugbear, pyupgrade; line length 120
LINT_PATHS := archlab archref autograder tests scripts bench figs solutions
lint: setup
	$(PY) -m ruff check $(LINT_PATHS)

# lint first: a style slip fails in seconds, not after the whole suite
test: setup lint browser hub-deps
	$(PY) -m pytest

# The fast tier (pyproject.toml's markers): what needs no browser, hub or kernel running a whole
# notebook and takes under ~20 s a test. It installs nothing from apt.
FAST := not browser and not hub and not notebooks and not slow
test-fast: setup
	$(PY) -m pytest -m "$(FAST)"

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

# The instructor's report of what was graded: build/grading/report/index.html (README "The report")
WORKSPACE ?= build/grading
report: setup
	$(PY) -m autograder report --workspace $(WORKSPACE)

# A class on this server: JupyterHub with nbgrader's Assignments tab and Formgrader, accounts
# from the roster (id,name,role,lms_id). Runs as root. autograder/README.md: running a term.
ROSTER ?= roster.csv
PORT ?= 8000
DB_URL ?=
hub: setup hub-deps
	$(PY) -m autograder hub --roster $(ROSTER) --port $(PORT) $(if $(DB_URL),--db-url $(DB_URL))

clean:
	rm -rf build

# What students receive (README "Instructors"): build/student/ and build/student.zip, no answers.
student: setup
	$(PY) -m autograder bundle --out build/student --zip

# Model solutions to release after the deadline: executed, without hidden tests or rubrics.
solutions: setup
	$(PY) -m autograder solutions --out build/model_solutions

# Every figure a notebook shows is made by a script in figs/src/ (deterministic output).
figs: setup
	for f in figs/src/*.py; do $(PY) $$f || exit 1; done

# Benchmarks, one command each, write bench/results/<machine>.json and .md and
# bench/results/selective_scan-<machine>.json and .md; run them on a quiet machine.
bench: setup
	$(PY) bench/run.py
	$(PY) bench/selective_scan.py --prefill --repeat 3

# graded on submit: seconds from Submit to feedback with the hub's grading service, idle and in a rush
bench-hub: setup
	$(PY) bench/hub.py

# the grader over the whole course: plain against graded, 1 and 2 workers, the local pool against Dask
bench-grading: setup
	$(PY) bench/grading.py --backend dask
