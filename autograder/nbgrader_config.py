"""nbgrader configuration of the course (loaded by `python -m autograder` and by `nbgrader`
when run from the repository root with `--config autograder/nbgrader_config.py`).

source = solutions/ (instructor notebooks), release = notebooks/ (student notebooks). Grading
runs in a workspace of its own (build/grading by default); `autograder.paths` sets those folders.
"""
c = get_config()  # noqa: F821  (provided by traitlets when this file is loaded)

c.CourseDirectory.course_id = "architectures-workbook"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "notebooks"
# the jupytext sources beside each instructor notebook hold the solutions: never release them
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "[0-9][0-9]_*.py"]

# A cell may run this long while grading before it is interrupted (seconds). Notebooks shrink
# their heavy cells when NBGRADER_EXECUTION is set, so the whole notebook fits well inside this.
c.Execute.timeout = 180
c.Execute.interrupt_on_timeout = True
c.Execute.kernel_name = "python3"

# Solutions are replaced by this stub in the student release.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
