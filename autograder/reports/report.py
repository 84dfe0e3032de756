"""The instructor's report: what the class got wrong, per assignment and for the course.

`python -m autograder report [ID ...] --out DIR` (default WS/report) writes, from the numbers of
autograder.reports.analysis and the look-alike pairs of autograder.reports.similar:

- `index.html` (the course: every assignment's counts, scores and links) and `course.csv`;
- per assignment `<id>.html` and its tables as CSV: `<id>.scores.csv`, `<id>.tests.csv`,
  `<id>.mistakes.csv`, `<id>.attempts.csv`, `<id>.similar.csv`.

The pages open offline: plots are matplotlib PNGs embedded as data URIs, the tables sort with a
few lines of inline script, nothing is fetched. The folder and its files are closed to other
accounts (no permission bits for "other"): on the hub it lives in the course folder, which only
the instructors' group can enter.
"""

import base64
import csv
import html
import io
import math
import os
import statistics
from datetime import UTC, datetime
from pathlib import Path

import matplotlib
import nbformat

from autograder import contract
from autograder.grading import submission
from autograder.reports import analysis, similar

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)

STYLE = """<style>body{font-family:sans-serif;max-width:72em;margin:2em auto;color:#222}
h2{border-bottom:2px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.5em 0}td,th{padding:.25em .6em;border-bottom:1px solid #ddd;text-align:left}
th.sortable{cursor:pointer;background:#f2f2f2}th.sortable:after{content:" \\2195";color:#999}
td.num{text-align:right;font-variant-numeric:tabular-nums}.flag{color:#a40}.note{background:#fff6d6;padding:.5em}
.pair{display:grid;grid-template-columns:1fr 1fr;gap:1em}.pair>div{min-width:0}
pre{background:#f6f6f6;padding:.5em;overflow:auto;font-size:85%}img{max-width:100%;border:1px solid #eee}</style>"""

SORT_JS = """<script>
document.querySelectorAll("table.sortable").forEach(function (t) {
  t.querySelectorAll("th").forEach(function (th, i) {
    th.classList.add("sortable");
    th.addEventListener("click", function () {
      var body = t.tBodies[0], rows = Array.from(body.rows), up = th.dataset.dir !== "up";
      th.dataset.dir = up ? "up" : "down";
      rows.sort(function (a, b) {
        var x = a.cells[i].dataset.v !== undefined ? a.cells[i].dataset.v : a.cells[i].textContent;
        var y = b.cells[i].dataset.v !== undefined ? b.cells[i].dataset.v : b.cells[i].textContent;
        var nx = parseFloat(x), ny = parseFloat(y);
        var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
        return up ? c : -c;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
</script>"""


MAX_PAIRS = 12           # pairs shown side by side per exercise (all of them are in the CSV)


def _n(x):
    return f"<td class='num'>{x}</td>"


def _e(x):
    return html.escape(str(x))


def _num(x, digits=2, pct=False):
    if x is None:
        return "<td class='num' data-v=''>n/a</td>"
    shown = f"{100 * x:.0f} %" if pct else f"{x:.{digits}f}"
    return f"<td class='num' data-v='{x:.6f}'>{shown}</td>"


def _table(head, rows, sortable=True):
    th = "".join(f"<th>{_e(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(c if c.startswith("<td") else f"<td>{_e(c)}</td>" for c in r) + "</tr>"
                   for r in rows)
    return f"<table class='{'sortable' if sortable else ''}'><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _png(fig):
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return f"<img alt='plot' src='data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}'>"


def _histogram(rep):
    xs = [r.raw for r in rep.counted]
    fig, ax = plt.subplots(figsize=(6.5, 3))
    top = math.ceil(max(rep.max_score, max(xs)))
    step = max(1, math.ceil((top + 1) / 25))           # one bar a point, or a few points on a long scale
    edges = [x - 0.5 for x in range(0, top + step + 1, step)]
    ax.hist(xs, bins=edges, color="#4a7ab5", edgecolor="white")
    ax.set_xlabel(f"raw score (of {rep.max_score:g})")
    ax.set_ylabel("students")
    ax.set_title(f"{rep.assignment}: scores of {len(xs)} counted submissions")
    return _png(fig)


def _mistake_bars(m):
    labels = [mid.split("/")[-1] for mid in m.counts] + ([contract.UNRECOGNISED] if m.unrecognised else [])
    values = list(m.counts.values()) + ([m.unrecognised] if m.unrecognised else [])
    fig, ax = plt.subplots(figsize=(6.5, 0.45 * len(labels) + 1))
    colors = ["#c0504d"] * len(m.counts) + (["#999999"] if m.unrecognised else [])
    ax.barh(range(len(labels))[::-1], values, color=colors)
    ax.set_yticks(range(len(labels))[::-1], labels)
    ax.set_xlabel("students")
    ax.set_title(f"{m.exercise}: {m.failures} failed")
    ax.xaxis.get_major_locator().set_params(integer=True)
    return _png(fig)


def _summary_rows(rep):
    s = rep.summary
    return [["counted (graded, unflagged)", f"<td class='num'>{s.n}</td>"],
            ["failed (listed below, not in the statistics)", f"<td class='num'>{len(rep.failed)}</td>"],
            ["flagged (listed below, not in the statistics)", f"<td class='num'>{len(rep.flagged)}</td>"],
            ["mean", _num(s.mean)], ["median", _num(s.median)], ["first quartile", _num(s.q1)],
            ["third quartile", _num(s.q3)], ["lowest", _num(s.low)], ["highest", _num(s.high)],
            ["points possible", _num(rep.max_score, 1)]]


def _page(title, body):
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{_e(title)}</title>{STYLE}</head>"
            f"<body>{body}{SORT_JS}</body></html>\n")


def _assignment_html(rep, built):
    out = [f"<p><a href='index.html'>course</a></p><h1>{_e(rep.assignment)}: what the class got wrong</h1>",
           f"<p>Built {_e(built)} from {rep.submissions} submission(s) with a record.</p>"]
    if rep.note:
        out.append(f"<p class='note' id='note'>{_e(rep.note)}</p>")
    out.append("<h2 id='scores'>Scores</h2>")
    if rep.counted:
        out.append(_histogram(rep))
    out.append(_table(["", "value"], _summary_rows(rep), sortable=False))
    out.append("<h2 id='tests'>Tests</h2><p>Pass rate, points, and discrimination: point-biserial r of passing "
               "with the rest of the raw score, and the upper-minus-lower 27 % index. Flags mark tests nearly "
               f"everyone passes (&ge; {analysis.EASY:.0%}) or fails (&le; {analysis.HARD:.0%}) and negative "
               "discrimination.</p>")
    out.append(_table(["test", "points", "n", "passed", "pass rate", "point-biserial r", "upper-lower", "flags"],
                      [[t.grade_id, _num(t.points, 1), _n(t.n), _n(t.passed),
                        _num(t.pass_rate, pct=True), _num(t.point_biserial), _num(t.upper_lower),
                        f"<td class='flag'>{_e('; '.join(t.flags))}</td>"] for t in rep.tests]))
    out.append("<h2 id='mistakes'>Named mistakes</h2><p>Per exercise, the named mistakes of the failed tests "
               "by how many students made them. <em>Unrecognised</em> failures are the ones no hint explains: "
               "the cue to name a new mistake in the test cell (<code>mistake(\"slug\", \"hint\")</code>).</p>")
    any_failed = False
    for m in rep.mistakes:
        if not m.failures:
            continue
        any_failed = True
        share = m.unrecognised_share
        out.append(f"<h3 id='m-{_e(m.exercise)}'>{_e(m.exercise)}</h3>")
        out.append(_mistake_bars(m))
        rows = [[mid, f"<td class='num'>{n}</td>", _num(n / m.failures, pct=True)] for mid, n in m.counts.items()]
        rows.append([contract.UNRECOGNISED, f"<td class='num'>{m.unrecognised}</td>", _num(share, pct=True)])
        if m.unknown:
            rows.append(["(graded before mistakes had ids)", f"<td class='num'>{m.unknown}</td>",
                         _num(m.unknown / m.failures, pct=True)])
        out.append(_table(["mistake", "students", "share of the failures"], rows))
    if not any_failed:
        out.append("<p>No counted submission failed a test.</p>")
    out.append("<h2 id='attempts'>Attempts</h2>")
    att = rep.attempts
    if att and att.per_student:
        counts = sorted(att.per_student.values())
        out.append(f"<p>{len(counts)} student(s) graded; attempts per student: median "
                   f"{statistics.median(counts):g}, most {counts[-1]}.</p>")
        out.append(_table(["student", "attempts"], [[s, _n(n)] for s, n in att.per_student.items()]))
        if any(n > 1 for n in counts) and att.first_last:
            out.append("<p>Each named mistake: students who made it at their first and at their last attempt.</p>")
            out.append(_table(["mistake", "first attempt", "last attempt"],
                              [[mid, f"<td class='num'>{a}</td>", f"<td class='num'>{b}</td>"]
                               for mid, (a, b) in att.first_last.items()]))
    else:
        out.append("<p>No grading history for this assignment.</p>")
    out.append("<h2 id='late'>Lateness and manual grading</h2>")
    out.append(f"<p>{len(rep.late)} of {len(rep.counted)} counted submission(s) late. Written answers: "
               f"{rep.manual_total - len(rep.manual_waiting)} of {rep.manual_total} submission(s) graded by hand, "
               f"{len(rep.manual_waiting)} waiting.</p>")
    if rep.late:
        out.append(_table(["student", "hours late", "penalty"],
                          [[s, _num(sec / 3600, 1), _num(pen, 1)] for s, sec, pen in rep.late]))
    out.append("<h2 id='failed'>Failed and flagged</h2>")
    if rep.failed or rep.flagged:
        out.append(_table(["student", "what", "why"], [[s, "failed", why] for s, why in rep.failed]
                          + [[s, "flagged", "; ".join(f)] for s, f in rep.flagged]))
    else:
        out.append("<p>None.</p>")
    out.append("<h2 id='similar'>Answers that look alike</h2><p>Pairs of answers whose code, with names "
               "ignored and the release's stub discounted, overlaps by at least "
               f"{similar.THRESHOLD:.0%} (copydetect's winnowing fingerprints). Answers that look alike are a "
               "reason to read both, not a verdict.</p>")
    shown = False
    for ex, ps in rep.similar.items():
        if not ps:
            continue
        shown = True
        out.append(f"<h3>{_e(ex)}</h3>")
        groups = similar.same_code(ps)
        grouped = {s: i for i, g in enumerate(groups) for s in g}
        codes = {p.a: p.code_a for p in ps} | {p.b: p.code_b for p in ps}
        for g in groups:
            out.append(f"<p>{len(g)} students handed in the same code once names are ignored: "
                       f"{_e(', '.join(g))}. One of them:</p><pre>{_e(codes[g[0]])}</pre>")
        rest = [p for p in ps if not (p.a in grouped and grouped.get(p.a) == grouped.get(p.b))]
        for p in rest[:MAX_PAIRS]:
            out.append(f"<p>{_e(p.a)} and {_e(p.b)}, {p.similarity:.0%} alike:</p><div class='pair'>"
                       f"<div><b>{_e(p.a)}</b><pre>{_e(p.code_a)}</pre></div>"
                       f"<div><b>{_e(p.b)}</b><pre>{_e(p.code_b)}</pre></div></div>")
        if len(rest) > MAX_PAIRS:
            out.append(f"<p>{len(rest) - MAX_PAIRS} more pair(s) in {_e(rep.assignment)}.similar.csv.</p>")
    if not shown:
        out.append("<p>No pair above the threshold.</p>")
    return _page(f"{rep.assignment}: report", "\n".join(out))


def _course_html(reports, built):
    rows = []
    for a, rep in reports.items():
        s = rep.summary
        rows.append([f"<td><a href='{_e(a)}.html'>{_e(a)}</a></td>", f"<td class='num'>{rep.submissions}</td>",
                     f"<td class='num'>{s.n}</td>", f"<td class='num'>{len(rep.failed)}</td>",
                     f"<td class='num'>{len(rep.flagged)}</td>", _num(s.mean), _num(s.median),
                     _num(rep.max_score, 1)])
    body = [f"<h1>The course: what the class got wrong</h1><p>Built {_e(built)}.</p>"]
    with_scores = [(a, r) for a, r in reports.items() if r.counted and r.max_score]
    if with_scores:
        fig, ax = plt.subplots(figsize=(6.5, 0.45 * len(with_scores) + 1))
        ax.barh(range(len(with_scores))[::-1], [r.summary.mean / r.max_score for _, r in with_scores],
                color="#4a7ab5")
        ax.set_yticks(range(len(with_scores))[::-1], [a for a, _ in with_scores])
        ax.set_xlim(0, 1)
        ax.set_xlabel("mean raw score / points possible")
        body.append(_png(fig))
    else:
        body.append("<p class='note'>No assignment has a counted submission yet.</p>")
    body.append(_table(["assignment", "submissions", "counted", "failed", "flagged", "mean", "median", "points"],
                       rows))
    return _page("course report", "\n".join(body))


def _csv(path, head, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(head)
        w.writerows(rows)


def _write_csvs(out, rep):
    a = rep.assignment
    _csv(out / f"{a}.scores.csv", ["student_id", "raw_score", "score", "max_score"],
         [[r.student, r.raw, r.score, rep.max_score] for r in rep.counted]
         + [[s, "", "", ""] for s, _ in rep.failed + rep.flagged])
    _csv(out / f"{a}.tests.csv", ["grade_id", "points", "n", "passed", "pass_rate", "point_biserial", "upper_lower",
                                  "flags"],
         [[t.grade_id, t.points, t.n, t.passed, t.pass_rate, t.point_biserial, t.upper_lower, "; ".join(t.flags)]
          for t in rep.tests])
    _csv(out / f"{a}.mistakes.csv", ["exercise", "mistake", "students", "failures"],
         [[m.exercise, mid, n, m.failures] for m in rep.mistakes for mid, n in m.counts.items()]
         + [[m.exercise, contract.UNRECOGNISED, m.unrecognised, m.failures] for m in rep.mistakes if m.failures])
    _csv(out / f"{a}.attempts.csv", ["student_id", "attempts"], list((rep.attempts.per_student or {}).items()))
    _csv(out / f"{a}.similar.csv", ["exercise", "student_a", "student_b", "similarity", "share_a", "share_b"],
         [[p.exercise, p.a, p.b, round(p.similarity, 4), round(p.share_a, 4), round(p.share_b, 4)]
          for ps in rep.similar.values() for p in ps])


def _close(path):
    """No permission for other accounts, whatever the umask: the report shows every student's
    answers. The group may read and write (on the hub, the instructors' group: any instructor can
    rebuild a report another one made); a folder keeps its setgid bit."""
    mode = path.stat().st_mode & 0o7777
    if path.stat().st_uid == os.geteuid():
        os.chmod(path, (mode | (0o070 if path.is_dir() else 0o060)) & ~0o007)


def build(ws, out=None, assignments=None, threshold=similar.THRESHOLD):
    """Write the report of `assignments` (default: every one with a record) into `out`
    (default WS/report); returns {assignment: AssignmentReport}."""
    ws = Path(ws)
    out = Path(out) if out else ws / "report"
    out.mkdir(parents=True, exist_ok=True)
    _close(out)
    reports = analysis.analyse(ws, assignments)
    built = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    for a, rep in reports.items():
        try:
            release = nbformat.read(submission.truth_files(a)[1], as_version=4)
        except (OSError, ValueError):
            release = nbformat.v4.new_notebook()
        counted = {r.student for r in rep.counted} | {s for s, _ in rep.flagged}
        rep.similar = {ex: [p for p in ps if p.a in counted and p.b in counted]
                       for ex, ps in similar.all_pairs(ws / "submitted", a, release, threshold).items()}
        (out / f"{a}.html").write_text(_assignment_html(rep, built))
        _write_csvs(out, rep)
    (out / "index.html").write_text(_course_html(reports, built))
    _csv(out / "course.csv", ["assignment", "submissions", "counted", "failed", "flagged", "mean", "median",
                              "max_score"],
         [[a, r.submissions, r.summary.n, len(r.failed), len(r.flagged), r.summary.mean, r.summary.median,
           r.max_score] for a, r in reports.items()])
    for p in out.iterdir():
        _close(p)
    return reports
