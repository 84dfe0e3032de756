"""Bring submissions into the grading workspace: ws/submitted/<student>/<assignment>/<assignment>.ipynb.

Accepted: a folder of <student>/<assignment>/<assignment>.ipynb or <student>/<assignment>.ipynb;
a folder of <student>.zip files (each holding <assignment>.ipynb files anywhere inside); or
nbgrader's exchange layout (<exchange>/<course>/inbound/<student>+<assignment>+<time>/...).
Zips are read with size limits and never extracted to disk as given, so a hostile archive
cannot write outside the workspace. Anything unusable is reported, not dropped silently.
"""

import datetime
import re
import shutil
import zipfile
from pathlib import Path

from . import paths

STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MAX_NOTEBOOK_BYTES = 50 * 2**20


def _place(ws, student, assignment, data, problems):
    if not STUDENT_ID.match(student):
        problems.append((student, assignment, f"student id {student!r} must be letters, digits, '.', '_' or '-'"))
        return 0
    dest = Path(ws) / "submitted" / student / assignment
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    (dest / f"{assignment}.ipynb").write_bytes(data)
    (dest / "timestamp.txt").write_text(datetime.datetime.now(datetime.timezone.utc).isoformat())
    return 1


def collect(source, ws):
    """Copy every submission found under `source` into ws; returns (count, problems)."""
    source, known = Path(source), set(paths.present_assignments())
    problems, count = [], 0
    inbound = [p for p in source.glob("*/inbound/*") if p.is_dir() and p.name.count("+") >= 2]
    for entry in sorted(inbound):
        student, assignment = entry.name.split("+")[:2]
        nb = entry / f"{assignment}.ipynb"
        if assignment in known and nb.exists():
            count += _place(ws, student, assignment, nb.read_bytes(), problems)
    if inbound:
        return count, problems
    for entry in sorted(source.iterdir()):
        if entry.is_file() and entry.suffix == ".zip":
            count += _from_zip(entry, ws, known, problems)
        elif entry.is_dir():
            for nb in sorted(entry.rglob("*.ipynb")):
                if ".ipynb_checkpoints" in nb.parts or nb.stem not in known:
                    continue
                if nb.stat().st_size > MAX_NOTEBOOK_BYTES:
                    problems.append((entry.name, nb.stem, "notebook larger than 50 MiB"))
                    continue
                count += _place(ws, entry.name, nb.stem, nb.read_bytes(), problems)
    return count, problems


def _from_zip(path, ws, known, problems):
    student, count = path.stem, 0
    try:
        with zipfile.ZipFile(path) as z:
            for info in z.infolist():
                name = Path(info.filename).name
                stem = name[:-6] if name.endswith(".ipynb") else None
                if stem not in known or ".ipynb_checkpoints" in info.filename:
                    continue
                if info.file_size > MAX_NOTEBOOK_BYTES:
                    problems.append((student, stem, "notebook in the zip is larger than 50 MiB"))
                    continue
                count += _place(ws, student, stem, z.read(info), problems)
    except zipfile.BadZipFile as e:
        problems.append((student, "?", f"not a zip file ({e})"))
    return count


def main(args):
    count, problems = collect(args.source, args.workspace)
    print(f"collected {count} submission(s) into {args.workspace}/submitted")
    for student, assignment, why in problems:
        print(f"  not collected: {student} {assignment}: {why}")
