"""Bring submissions into the grading workspace: ws/submitted/<student>/<assignment>/<assignment>.ipynb.

Accepted: a folder of <student>/<assignment>/<assignment>.ipynb or <student>/<assignment>.ipynb;
a folder of <student>.zip files (each holding <assignment>.ipynb files anywhere inside); or
nbgrader's exchange layout (<exchange>/<course>/inbound/<student>+<assignment>+<time>/..., or the
<course> folder itself): each student's latest submission, with its own timestamp.txt and
submission_secret.txt (deadlines and released feedback need them); a folder owned by another
account than the one it is named for is refused, and so is a link or a file of another account
inside it (this runs as root in folders students control).
Zips are read with size limits and never extracted to disk as given, so a hostile archive
cannot write outside the workspace. Anything unusable is reported, not dropped silently.
"""

import datetime
import errno
import os
import pwd
import re
import shutil
import stat
import zipfile
from pathlib import Path

from autograder import paths

STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MAX_NOTEBOOK_BYTES = 50 * 2**20


def _place(ws, student, assignment, data, problems, origin=None):
    if not STUDENT_ID.match(student):
        problems.append((student, assignment, f"student id {student!r} must be letters, digits, '.', '_' or '-'"))
        return 0
    dest = Path(ws) / "submitted" / student / assignment
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    (dest / f"{assignment}.ipynb").write_bytes(data)
    (dest / "collected.txt").write_text(datetime.datetime.now(datetime.UTC).isoformat())
    # an exchange submission's own time (deadlines) and secret (released feedback)
    for name in ("timestamp.txt", "submission_secret.txt"):
        extra = _read_own(origin / name, origin.lstat().st_uid, 4096) if origin is not None else None
        if isinstance(extra, bytes):
            (dest / name).write_bytes(extra)
    return 1


def _read_own(path, uid, limit=MAX_NOTEBOOK_BYTES):
    """The bytes of a regular file owned by `uid`, never through a link: a student controls
    their exchange folder, and this runs as root. Returns bytes, or why not (a string)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as e:
        return f"cannot open {Path(path).name} ({'a link' if e.errno == errno.ELOOP else e.strerror})"
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode) or st.st_uid != uid:
            return f"{Path(path).name} is not a file of the submitting account"
        if st.st_size > limit:
            return f"{Path(path).name} is larger than {limit // 2**20 or limit} {'MiB' if limit >= 2**20 else 'bytes'}"
        return f.read(limit + 1)[:limit]


WRITTEN_AFTER_S = 60    # a submission folder this old is complete, whoever wrote it


def complete(entry, st=None):
    """Has nbgrader's submit finished writing this inbound folder? Its last step makes the folder
    world-writable (0777, so the instructor can remove it), after the notebook, timestamp.txt and
    submission_secret.txt; before that, a reader may find an empty notebook. A folder older than
    a minute counts as complete too (copied in, or written by another tool)."""
    import time
    st = st or entry.lstat()
    return bool(st.st_mode & stat.S_IWOTH) or time.time() - st.st_mtime > WRITTEN_AFTER_S


def inbound(course_dir, assignment=None):
    """The latest submission per (student, assignment) in <course_dir>/inbound, and problems.

    Returns ({(student, assignment): folder}, [(student, assignment, why)]). A folder named for
    one account but owned by another is a submission in someone else's name: refused.
    """
    from nbgrader.utils import parse_utc
    latest, problems = {}, []
    for entry in sorted(Path(course_dir, "inbound").glob("*+*+*")):
        student, name, stamp = entry.name.split("+")[:3]
        if not entry.is_dir() or (assignment and name != assignment):
            continue
        st = entry.lstat()
        if not stat.S_ISDIR(st.st_mode):
            problems.append((student, name, f"refused {entry.name}: not a folder (a link?)"))
            continue
        uid = st.st_uid
        try:
            claimed = pwd.getpwnam(student).pw_uid
        except KeyError:
            claimed = None     # no such account here (submissions copied from elsewhere)
        if claimed is not None and uid != claimed:
            try:
                owner = pwd.getpwuid(uid).pw_name
            except KeyError:
                owner = f"uid {uid}"
            problems.append((student, name,
                             f"refused a submission in {student}'s name owned by {owner} ({entry.name})"))
            continue
        try:
            nb = (entry / f"{name}.ipynb").lstat()
        except OSError:
            nb = None
        if nb is None or not stat.S_ISREG(nb.st_mode) or nb.st_uid != uid:
            what = "missing" if nb is None else "a link or not the account's own file"
            problems.append((student, name, f"refused {entry.name}: its {name}.ipynb is {what}"))
            continue
        if not complete(entry, st):
            problems.append((student, name, f"{entry.name} is still being written (nbgrader's submit has not "
                                            f"finished): collect it again"))
            continue
        stamp_bytes = _read_own(entry / "timestamp.txt", uid, 4096)
        try:
            when = parse_utc(stamp_bytes.decode().strip() if isinstance(stamp_bytes, bytes) else stamp)
        except ValueError:
            when = parse_utc(stamp)
        if (student, name) not in latest or when > latest[(student, name)][0]:
            latest[(student, name)] = (when, entry)
    return {k: v[1] for k, v in latest.items()}, problems


def collect(source, ws, assignment=None):
    """Copy every submission found under `source` (of `assignment` only, if given) into ws;
    returns (count, problems)."""
    source, known = Path(source), set(paths.present_assignments())
    if assignment:
        known &= {assignment}
    problems, count = [], 0
    courses = ([source] if (source / "inbound").is_dir()
               else sorted(p.parent for p in source.glob("*/inbound") if p.is_dir()))
    if any(next(Path(c, "inbound").glob("*+*+*"), None) for c in courses) or (source / "inbound").is_dir():
        for course in courses:
            latest, refused = inbound(course, assignment)
            problems += refused
            for (student, name), entry in sorted(latest.items()):
                if name not in known:
                    continue
                data = _read_own(entry / f"{name}.ipynb", entry.lstat().st_uid)
                if isinstance(data, bytes):
                    count += _place(ws, student, name, data, problems, origin=entry)
                else:
                    problems.append((student, name, data))
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
