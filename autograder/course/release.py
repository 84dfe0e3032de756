"""Student notebooks from instructor notebooks, through nbgrader's generate_assignment.

solutions/<id>/<id>.ipynb -> notebooks/<id>/<id>.ipynb: solution regions replaced by stubs,
hidden tests removed, outputs cleared, checksums of graded cells recorded. The result is
re-serialised the same way as the sources so a test can regenerate and compare.
"""

import tempfile
from pathlib import Path

import nbformat

from autograder import nbg, paths
from autograder.course import build


def generate(assignment, release_dir, workspace):
    """Run generate_assignment for one assignment into release_dir/<id>/; return the notebook path."""
    api = nbg.api(workspace, release_directory=str(release_dir))
    result = api.generate_assignment(assignment, force=True, create=True)
    if not result["success"]:
        raise RuntimeError(f"nbgrader could not generate {assignment}:\n{result.get('log', '')}\n"
                           f"{result.get('error', '')}")
    out = Path(release_dir) / assignment / f"{assignment}.ipynb"
    nb = nbformat.read(out, as_version=4)
    out.write_text(build.dumps(nb))
    return out


def release(assignment, release_dir=paths.NOTEBOOKS):
    """Rebuild the instructor notebook from its source, then the student release from it."""
    build.build(assignment)
    with tempfile.TemporaryDirectory(dir=_tmp_root()) as ws:
        return generate(assignment, Path(release_dir), Path(ws))


def _tmp_root():
    paths.BUILD.mkdir(exist_ok=True)
    return paths.BUILD
