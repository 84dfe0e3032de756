# The course's commands. Two of them are all a fresh machine needs:
#   make lab    set everything up, then open the course in JupyterLab (students)
#   make test   set everything up, then run the whole test suite (CI runs this)
# Instructors: make release | execute | grade SUBMISSIONS=folder

EXTRAS := [dev]
include scripts/course.mk

.PHONY: test release execute grade figs bench bench-grading browser clean student solutions

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
grade: setup
	$(PY) -m autograder grade $(SUBMISSIONS) --out build/grades.csv --workers $(WORKERS)

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

# Benchmarks write bench/results/<machine>.json and .md; run them on a quiet machine.
bench: setup
	$(PY) bench/run.py

bench-grading: setup
	$(PY) bench/grading.py
