"""Make the exercise editions of the lessons: notebooks/NN-name.ipynb -> notebooks/exercises/.

The lesson is the one source. An exercise is a function or class in one lesson code cell
whose metadata holds ``"exercise": {"name", "fallback", "task", "hints"}``; the learner's part
sits between ``# BEGIN SOLUTION`` and ``# END SOLUTION`` lines, and the next code cell checks
it (see notebooks/README.md, "For authors"). For every lesson with at least one exercise,
`make_edition` builds the exercise edition:

- a title cell ``# Lesson N, exercise edition: <title>`` with the edition's own Binder and
  Colab badges (tools/links.py) and a note that links the lesson and says how to work; the
  lesson's first cell follows without its heading and badges;
- each solution region becomes ``# Your code here.`` and
  ``raise NotImplementedError("<name>: not written yet")`` at the region's indentation;
- ``@check.exercise(fallback=<fallback>)`` above the ``def``/``class`` line (unless the
  fallback is null), so later cells run on cnnlib's version until the stub is written;
- a markdown cell ``### Exercise: <name>`` + task before the exercise cell, and the hints,
  nested in collapsed ``<details>`` so they open one at a time, after its check cell;
- cells tagged ``lesson-only`` are left out, the ``exercise`` metadata and the lessons'
  execution timings are stripped, outputs are emptied, and relative links gain ``../``.

Malformed markup is refused with an `ExerciseMarkupError` (a ValueError) that names the
notebook and the cell.

Generation is deterministic: the same lesson gives the same bytes, written as Jupyter writes
notebooks (JSON with indent=1, sorted keys, ensure_ascii=False, a trailing newline); new
cells get ids derived from the id of the lesson cell they come from.

Stored outputs: `write_editions` leaves an existing edition file untouched when the cells it
would write are the same as the file's, ignoring outputs, execution counts and execution
timings (`same_cells`). So an edition keeps its executed outputs until its lesson's markup or
text changes, and regenerating all lessons only rewrites (and `course.py exercises` only
re-executes) the editions that changed; ``python3 course.py exercises --force`` executes
every one again, e.g. after cnnlib changes what a check prints.

Standard library only: course.py runs it before the course's environment exists.

    python3 course.py exercises [--force] [lessons...]   regenerate, then execute what changed
    python3 tools/exercises.py [--check] [lessons...]    regenerate only; --check: only say
                                                         which editions are out of date
"""

import ast
import importlib.util
import json
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _load_links():
    """tools/links.py (the launch links), loaded by path: tools/ is not a package."""
    spec = importlib.util.spec_from_file_location("course_links", Path(__file__).resolve().parent / "links.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


links = _load_links()
LESSONS = ROOT / "notebooks"
EDITIONS = LESSONS / "exercises"

BEGIN, END = "# BEGIN SOLUTION", "# END SOLUTION"
MARKER = re.compile(r"^\s*#\s*(BEGIN|END)\s+SOLUTION\b", re.I)
LESSON_ONLY = "lesson-only"
EXERCISE_KEYS = {"name", "fallback", "task", "hints"}
TITLE = re.compile(r"^#\s+Lesson\s+(\d+):\s*(\S.*?)\s*$")
IMPORTS_CHECK = re.compile(r"^\s*from\s+cnnlib\s+import\s+.*\bcheck\b", re.M)
# Cell metadata that records a run rather than the lesson (nbconvert's timings).
RUN_METADATA = ("execution",)
# A link target in markdown, ](target), or in HTML, href="target" / src="target".
LINK = re.compile(r"(\]\(\s*<?|\b(?:href|src)\s*=\s*[\"'])([^)\s\"'>]+)")
ABSOLUTE = re.compile(r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*:|/|#)")  # a scheme, a rooted path, an anchor

NOTE = (
    "This is the exercise edition of [lesson {number}](../{lesson}): the same lesson, with the code "
    "you write yourself left as stubs. For each exercise, read the task, write the stub, run it "
    "and then its check cell, which says `PASSED`, `FAILED` (and what to look at) or "
    "`NOT WRITTEN YET`. Stuck? Open the hints under the check one at a time, and compare with "
    "the lesson when you are done.\n\n"
    "A stub you have not written yet falls back to cnnlib's version (the first cell that uses it "
    "says so), so every cell below it still runs."
)


class ExerciseMarkupError(ValueError):
    """The exercise markup of a lesson is malformed; the message names notebook and cell."""


# ---------------------------------------------------------------------------------------
# Reading and writing notebooks as Jupyter does

def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def dumps(nb):
    """`nb` as Jupyter (nbformat) writes it to disk."""
    return json.dumps(nb, sort_keys=True, indent=1, ensure_ascii=False) + "\n"


def text(source):
    return "".join(source) if isinstance(source, list) else source


def lines(source):
    """Source as Jupyter stores it: a list of lines, each but the last ending in a newline."""
    return source.splitlines(keepends=True)


def markdown_cell(cell_id, source):
    return {"cell_type": "markdown", "id": cell_id, "metadata": {}, "source": lines(source)}


# ---------------------------------------------------------------------------------------
# The markup

class Exercise:
    """One exercise of a lesson: its cell, metadata and solution regions.

    Attributes
    ----------
    index : int, the exercise cell's index in the lesson.
    name, fallback, task, hints : the cell's ``exercise`` metadata.
    regions : list of (begin, end) line indices (0-based, inclusive) of the marker lines.
    definition : int, index of the ``def``/``class`` line of `name`.
    indent : int, that line's indentation.
    check_index : int, the index of the check cell.
    """

    def __init__(self, index, spec, regions, definition, indent, check_index):
        self.index, self.regions = index, regions
        self.name, self.fallback = spec["name"], spec["fallback"]
        self.task, self.hints = spec["task"], list(spec["hints"])
        self.definition, self.indent, self.check_index = definition, indent, check_index


def _where(notebook, index, cell):
    cell_id = cell.get("id")
    return f"{notebook}: cell {index}" + (f" (id {cell_id})" if cell_id else "")


def _tags(cell):
    return cell.get("metadata", {}).get("tags", [])


def _indent(line):
    return len(line) - len(line.lstrip(" \t"))


def _check_spec(spec, where):
    if not isinstance(spec, dict):
        raise ExerciseMarkupError(f"{where}: metadata 'exercise' must be an object with keys "
                                  f"{sorted(EXERCISE_KEYS)}, not {type(spec).__name__}")
    if missing := sorted(EXERCISE_KEYS - spec.keys()):
        raise ExerciseMarkupError(f"{where}: metadata 'exercise' lacks {missing} "
                                  f"(fallback may be null, but must be there)")
    if unknown := sorted(spec.keys() - EXERCISE_KEYS):
        raise ExerciseMarkupError(f"{where}: metadata 'exercise' has unknown keys {unknown}; "
                                  f"the keys are {sorted(EXERCISE_KEYS)}")
    name = spec["name"]
    if not isinstance(name, str) or not name.isidentifier():
        raise ExerciseMarkupError(f"{where}: exercise name must be a Python identifier, not {name!r}")
    fallback = spec["fallback"]
    if fallback is not None:
        if not isinstance(fallback, str) or not fallback.strip():
            raise ExerciseMarkupError(f"{where}: exercise {name}: fallback must be a Python expression "
                                      f"(a string) or null, not {fallback!r}")
        try:
            compile(fallback, f"{name}'s fallback", "eval")
        except SyntaxError as error:
            raise ExerciseMarkupError(f"{where}: exercise {name}: fallback {fallback!r} is not a "
                                      f"Python expression: {error.msg}") from None
    if not isinstance(spec["task"], str) or not spec["task"].strip():
        raise ExerciseMarkupError(f"{where}: exercise {name}: the task is empty")
    hints = spec["hints"]
    if not isinstance(hints, list) or not hints:
        raise ExerciseMarkupError(f"{where}: exercise {name}: hints must be a non-empty list of "
                                  f"markdown strings, not {hints!r}")
    for k, hint in enumerate(hints, start=1):
        if not isinstance(hint, str) or not hint.strip():
            raise ExerciseMarkupError(f"{where}: exercise {name}: hint {k} is empty")


def find_regions(source_lines, where):
    """The (begin, end) marker line indices of each solution region in a cell's lines.

    Raises ExerciseMarkupError for a misspelled marker, a BEGIN inside a region, an END
    without a BEGIN, a BEGIN never closed, or an END indented unlike its BEGIN.
    """
    regions, begin = [], None
    for i, line in enumerate(source_lines):
        match = MARKER.match(line)
        if not match:
            continue
        word = match.group(1).upper()
        expected = BEGIN if word == "BEGIN" else END
        if line.strip() != expected:
            raise ExerciseMarkupError(f"{where}, line {i + 1}: write the marker as {expected!r} "
                                      f"on a line of its own, not {line.strip()!r}")
        if word == "BEGIN":
            if begin is not None:
                raise ExerciseMarkupError(f"{where}, line {i + 1}: {BEGIN!r} inside the region opened "
                                          f"on line {begin + 1} (close it with {END!r} first)")
            begin = i
        else:
            if begin is None:
                raise ExerciseMarkupError(f"{where}, line {i + 1}: {END!r} without a {BEGIN!r} before it")
            if _indent(line) != _indent(source_lines[begin]):
                raise ExerciseMarkupError(f"{where}, line {i + 1}: {END!r} is indented unlike the "
                                          f"{BEGIN!r} on line {begin + 1}")
            regions.append((begin, i))
            begin = None
    if begin is not None:
        raise ExerciseMarkupError(f"{where}, line {begin + 1}: {BEGIN!r} is never closed by {END!r}")
    return regions


def _parse(source, where):
    # IPython's line magics and shell escapes are not Python; blank them for the parser
    # (same line count, so line numbers still match).
    plain = "".join(line[:_indent(line)] + "pass\n" if line.lstrip().startswith(("%", "!")) else line
                    for line in lines(source))
    try:
        return ast.parse(plain)
    except SyntaxError as error:
        raise ExerciseMarkupError(f"{where}: the cell is not valid Python (line {error.lineno}: "
                                  f"{error.msg})") from None


def _exercise(nb, index, notebook):
    cell = nb["cells"][index]
    where = _where(notebook, index, cell)
    spec = cell["metadata"]["exercise"]
    _check_spec(spec, where)
    name = spec["name"]
    if cell["cell_type"] != "code":
        raise ExerciseMarkupError(f"{where}: exercise {name} is on a {cell['cell_type']} cell, not a code cell")
    if LESSON_ONLY in _tags(cell):
        raise ExerciseMarkupError(f"{where}: exercise {name} is tagged {LESSON_ONLY!r}, so no edition would have it")
    source = text(cell["source"])
    source_lines = lines(source)
    tree = _parse(source, where)
    statements = tree.body
    found = [k for k, node in enumerate(statements)
             if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == name]
    if not found:
        raise ExerciseMarkupError(f"{where}: exercise {name}: the cell defines no function or class "
                                  f"{name!r} at its top level")
    node = statements[found[-1]]  # the last definition is the one later cells see
    start = node.lineno - 1  # the def/class line, below any decorators
    stop = statements[found[-1] + 1].lineno - 1 if found[-1] + 1 < len(statements) else len(source_lines)
    regions = find_regions(source_lines, where)
    if not regions:
        raise ExerciseMarkupError(f"{where}: exercise {name} has no {BEGIN!r} ... {END!r} region")
    for begin, end in regions:
        if not (start < begin and end < stop and _indent(source_lines[begin]) > node.col_offset):
            raise ExerciseMarkupError(f"{where}, lines {begin + 1}-{end + 1}: the solution region is outside "
                                      f"{'class' if isinstance(node, ast.ClassDef) else 'def'} {name} "
                                      f"(lines {start + 1}-{node.end_lineno})")

    after = index + 1
    if after >= len(nb["cells"]):
        raise ExerciseMarkupError(f"{where}: exercise {name} has no check cell after it (it is the last cell)")
    check = nb["cells"][after]
    check_where = _where(notebook, after, check)
    if check["cell_type"] != "code" or "check." not in text(check["source"]):
        raise ExerciseMarkupError(f"{where}: exercise {name}: the cell right after it ({check_where}) must be "
                                  f"its check cell, a code cell calling check.<something>")
    if LESSON_ONLY in _tags(check) or "exercise" in check.get("metadata", {}):
        raise ExerciseMarkupError(f"{where}: exercise {name}: its check cell ({check_where}) must be neither "
                                  f"lesson-only nor an exercise itself")
    if spec["fallback"] is not None and not any(
            IMPORTS_CHECK.search(text(c["source"])) for c in nb["cells"][:index] if c["cell_type"] == "code"):
        raise ExerciseMarkupError(f"{where}: exercise {name}: no code cell before it does "
                                  f"`from cnnlib import check`, which the edition's decorator needs")
    return Exercise(index, spec, regions, start, node.col_offset, after)


def find_exercises(nb, notebook="notebook"):
    """The exercises of lesson `nb`, in order, after checking all of its markup.

    Parameters
    ----------
    nb : dict, the lesson notebook (nbformat 4 JSON).
    notebook : str, how error messages name it (e.g. its file name).

    Returns
    -------
    list of Exercise

    Raises
    ------
    ExerciseMarkupError
        On malformed markup; also for solution markers in a cell without exercise metadata
        and for two exercises with the same name.
    """
    exercises = []
    for index, cell in enumerate(nb["cells"]):
        if "exercise" in cell.get("metadata", {}):
            exercises.append(_exercise(nb, index, notebook))
        elif cell["cell_type"] == "code" and any(MARKER.match(line) for line in lines(text(cell["source"]))):
            raise ExerciseMarkupError(f"{_where(notebook, index, cell)}: solution markers in a cell without "
                                      f"'exercise' metadata (they would reach the exercise edition)")
    names = [e.name for e in exercises]
    if duplicates := sorted({n for n in names if names.count(n) > 1}):
        raise ExerciseMarkupError(f"{notebook}: more than one exercise named {duplicates}")
    checks = [e.check_index for e in exercises]
    for e in exercises:
        if e.index in checks:
            raise ExerciseMarkupError(f"{notebook}: exercise {e.name} (cell {e.index}) is another exercise's check cell")
    return exercises


# ---------------------------------------------------------------------------------------
# Building the edition

def relink(markdown):
    """Relative link targets one folder up (the edition lives in notebooks/exercises/)."""
    return LINK.sub(lambda m: m.group(1) + (m.group(2) if ABSOLUTE.match(m.group(2)) else "../" + m.group(2)),
                    markdown)


def stub_source(source, exercise, keep_solutions=False):
    """The exercise cell's source as the edition shows it.

    Each solution region becomes a stub at the region's indentation (with `keep_solutions`,
    its lines stay and only the marker lines go), and the decorator goes above the
    def/class line when there is a fallback.
    """
    source_lines = lines(source)
    out = []
    regions = {begin: end for begin, end in exercise.regions}
    i = 0
    while i < len(source_lines):
        if i == exercise.definition and exercise.fallback is not None:
            out.append(" " * exercise.indent + f"@check.exercise(fallback={exercise.fallback})\n")
        if i in regions:
            end = regions[i]
            pad = source_lines[i][:_indent(source_lines[i])]
            if keep_solutions:
                out += source_lines[i + 1:end]
            else:
                out += [pad + "# Your code here.\n",
                        pad + f'raise NotImplementedError("{exercise.name}: not written yet")\n']
            i = end + 1
            continue
        out.append(source_lines[i])
        i += 1
    result = "".join(out)
    return result if source.endswith("\n") else result.rstrip("\n")


def hints_markdown(hints):
    """The hints nested in <details>, so each opens only after the one before it."""
    parts = []
    for k, hint in enumerate(hints, start=1):
        parts.append(f"<details><summary>Hint {k}</summary>\n\n{relink(hint.strip())}\n")
    return "\n".join(parts) + "\n" + "\n".join("</details>" for _ in hints)


def _copy(cell):
    cell = json.loads(json.dumps(cell))
    for key in ("exercise",) + RUN_METADATA:
        cell["metadata"].pop(key, None)
    if cell["cell_type"] == "code":
        cell["outputs"], cell["execution_count"] = [], None
    elif cell["cell_type"] == "markdown":
        cell["source"] = lines(relink(text(cell["source"])))
    return cell


def title_cells(nb, lesson_name, notebook):
    """The edition's title cell and the lesson's first cell without its heading (if any is left).

    The title cell carries the edition's own Binder and Colab badges (tools/links.py builds
    them from pyproject.toml's [tool.course]); the lesson's badge line is left out.
    """
    first = nb["cells"][0] if nb["cells"] else None
    heading = text(first["source"]).split("\n", 1) if first else [""]
    match = TITLE.match(heading[0]) if first and first["cell_type"] == "markdown" else None
    if not match:
        raise ExerciseMarkupError(f"{notebook}: cell 0 must be markdown starting with '# Lesson N: Title', "
                                  f"not {heading[0][:80]!r}")
    number, title = match.groups()
    cell_id = first.get("id", "cell0")
    cells = [markdown_cell(f"{cell_id}-title", f"# Lesson {number}, exercise edition: {title}\n\n"
                           + links.badges(f"exercises/{lesson_name}") + "\n\n"
                           + NOTE.format(number=number, lesson=lesson_name))]
    rest = heading[1].lstrip("\n") if len(heading) > 1 else ""
    rest = links.BADGE_LINE.sub("", rest, count=1).lstrip("\n")
    if rest.strip():
        intro = _copy(first)
        intro["source"] = lines(relink(rest))
        cells.append(intro)
    return cells


def make_edition(nb, lesson_name, keep_solutions=False):
    """The exercise edition of lesson `nb`, or None if it has no exercise.

    Parameters
    ----------
    nb : dict, the lesson (nbformat 4 JSON).
    lesson_name : str, the lesson's file name (e.g. "02-dense-and-gradient-checking.ipynb"):
        the title cell links it, and errors name it.
    keep_solutions : bool, default False. True keeps the solution regions' code (without
        the marker lines): the edition as a learner who wrote every stub would have it, for
        the tests that run it.

    Returns
    -------
    dict or None, the edition (outputs empty), ready for `dumps`.

    Raises
    ------
    ExerciseMarkupError
        If the lesson's markup or title is malformed.
    """
    exercises = find_exercises(nb, lesson_name)
    if not exercises:
        return None
    by_cell = {e.index: e for e in exercises}
    after_check = {e.check_index: e for e in exercises}
    cells = title_cells(nb, lesson_name, lesson_name)
    for index, cell in enumerate(nb["cells"][1:], start=1):
        if LESSON_ONLY in _tags(cell):
            continue
        copy = _copy(cell)
        if index in by_cell:
            e = by_cell[index]
            cell_id = cell.get("id", f"cell{index}")
            cells.append(markdown_cell(f"{cell_id}-task", f"### Exercise: {e.name}\n\n{relink(e.task.strip())}"))
            copy["source"] = lines(stub_source(text(cell["source"]), e, keep_solutions))
        cells.append(copy)
        if index in after_check:
            e = after_check[index]
            cell_id = nb["cells"][e.index].get("id", f"cell{e.index}")
            cells.append(markdown_cell(f"{cell_id}-hints", hints_markdown(e.hints)))
    metadata = {k: v for k, v in nb.get("metadata", {}).items() if k in ("kernelspec", "language_info")}
    return {"cells": cells, "metadata": metadata, "nbformat": nb.get("nbformat", 4),
            "nbformat_minor": nb.get("nbformat_minor", 5)}


def edition_path(lesson):
    """Where the exercise edition of `lesson` (a path) goes: exercises/ beside it."""
    lesson = Path(lesson)
    return lesson.parent / "exercises" / lesson.name


LESSON_NAME = "[0-9][0-9]-*.ipynb"


def lesson_paths(folder=LESSONS):
    return sorted(Path(folder).glob(LESSON_NAME))


def not_a_lesson(path, folder=None):
    """Why `path` (as the user wrote it) cannot be a lesson to make an edition of, or None.

    A lesson is a notebook named NN-name.ipynb outside any exercises/ folder (an edition there
    would get its edition in exercises/exercises/). With `folder`, it must also be directly in
    `folder`: course.py passes the course's notebooks/, as each edition's badges and links
    point at notebooks/exercises/.
    """
    p = Path(path)
    if not p.exists():
        return f"{path}: no such file"
    if not p.is_file() or p.suffix != ".ipynb":
        return f"{path}: not a notebook; a lesson is notebooks/NN-name.ipynb"
    if p.parent.name == EDITIONS.name:
        lesson = os.path.join(os.path.dirname(os.path.dirname(str(path))), p.name)
        return f"{path}: an exercise edition, not a lesson: give {lesson}"
    if not p.match(LESSON_NAME):
        return f"{path}: not a lesson; a lesson's name is NN-name.ipynb, e.g. 02-dense-and-gradient-checking.ipynb"
    if folder is not None and p.resolve().parent != Path(folder).resolve():
        return f"{path}: not in this course's notebooks/ ({folder}), where the lessons and their editions live"
    try:
        nb = load(p)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        return f"{path}: cannot be read as a notebook ({error})"
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        return f"{path}: not a notebook (no list of cells)"
    return None


def comparable(nb):
    """What `same_cells` compares: each cell without outputs, counts and run metadata."""
    cells = []
    for cell in nb["cells"]:
        cell = {k: v for k, v in cell.items() if k not in ("outputs", "execution_count")}
        cell["metadata"] = {k: v for k, v in cell.get("metadata", {}).items() if k not in RUN_METADATA}
        cell["source"] = text(cell["source"])
        cells.append(cell)
    return cells


def same_cells(a, b):
    """True if notebooks `a` and `b` have the same cells, ignoring what a run changes."""
    return comparable(a) == comparable(b)


def write_editions(lessons=None, keep_solutions=False, check_only=False):
    """Regenerate the exercise editions of `lessons` (default: every lesson).

    Parameters
    ----------
    lessons : list of paths, default all of notebooks/NN-*.ipynb. With the default, an
        edition whose lesson no longer has exercises (or no longer exists) is removed.
    keep_solutions : bool, default False. Passed to `make_edition`.
    check_only : bool, default False. True writes and removes nothing, only reports.

    Returns
    -------
    list of (Path, str): each edition and what happened to it: "new", "changed" (written
        without outputs, to be executed), "unchanged" (the file is left as it is, with its
        outputs) or "removed".
    """
    everything = lessons is None
    lessons = [Path(p) for p in (lesson_paths() if everything else lessons)]
    report = []
    wanted = set()
    for lesson in lessons:
        edition = make_edition(load(lesson), lesson.name, keep_solutions)
        path = edition_path(lesson)
        if edition is None:
            if path.exists():
                report.append((path, "removed"))
                if not check_only:
                    path.unlink()
            continue
        wanted.add(path.resolve())
        if path.exists() and same_cells(load(path), edition):
            report.append((path, "unchanged"))
            continue
        report.append((path, "changed" if path.exists() else "new"))
        if not check_only:
            path.parent.mkdir(exist_ok=True)
            path.write_text(dumps(edition), encoding="utf-8")
    if everything:
        for stale in sorted(EDITIONS.glob("*.ipynb")):
            if stale.resolve() not in wanted:
                report.append((stale, "removed"))
                if not check_only:
                    stale.unlink()
    return report


USAGE = "usage: python3 tools/exercises.py [--check] [lessons...]"


def main(argv):
    if "-h" in argv or "--help" in argv:
        print(f"{USAGE}\n\nRegenerate the exercise editions of the given lessons (default: all);"
              "\n--check writes nothing and only says which editions are out of date.")
        return 0
    check_only = "--check" in argv
    paths = [a for a in argv if a != "--check"]
    if unknown := [a for a in paths if a.startswith("-")]:
        print(f"unknown option(s) {unknown}; {USAGE}", file=sys.stderr)
        return 2
    for path in paths:
        if problem := not_a_lesson(path):
            print(f"exercises.py: {problem}", file=sys.stderr)
            return 2
    try:
        report = write_editions(paths or None, check_only=check_only)
    except ExerciseMarkupError as error:
        print(f"exercise markup error: {error}", file=sys.stderr)
        return 1
    for path, status in report:
        print(f"{status:>9}  {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    if check_only and any(status != "unchanged" for _, status in report):
        print("exercise editions out of date: run `python3 course.py exercises`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
