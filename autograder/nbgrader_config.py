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

# There is one grader: python -m autograder (jailed kernels, test cells restored from the course,
# the guard before every test; autograder/README.md). nbgrader's own autograde (`nbgrader
# autograde`, the formgrader's autograde button) would run submissions unjailed, as whoever
# started it, and its generate_feedback renders the executed notebook, hidden tests included.
# Both are turned off: they stop before touching a file or the gradebook, with this message.
# (Defined here, not in the autograder package, because the hub's formgrader loads this file in
# the students' environment, which does not have the package.)
from nbconvert.exporters import Exporter  # noqa: E402
from nbgrader.converters.base import NbGraderException  # noqa: E402


class TurnedOffInThisCourse(Exporter):
    message = ("nbgrader's {what} is turned off in this course: grading runs only through the course's "
               "grader (jailed kernels, restored test cells, no hidden tests in feedback). As root, "
               "in the repository: python -m autograder {verb} --workspace COURSE_FOLDER")

    def __init__(self, parent=None, **kw):
        what, verb = ("generate_feedback", "feedback --release") if type(parent).__name__ == "GenerateFeedback" \
            else ("autograde", "autograde")
        msg = self.message.format(what=what, verb=verb)
        if parent is not None:
            parent.log.error(msg)
        raise NbGraderException(msg)


c.Autograde.exporter_class = TurnedOffInThisCourse
c.GenerateFeedback.exporter_class = TurnedOffInThisCourse
