"""The exercise editions (notebooks/exercises/) are what tools/exercises.py makes of the lessons.

Quick checks, no kernel: every committed edition has exactly the cells the generator makes
now from its lesson, no edition shows a solution, each unsolved edition's checks say NOT
WRITTEN YET, and the generator does what the markup says on small synthetic notebooks and
refuses malformed markup by notebook and cell. One slow check runs each edition with its
solutions put back in a fresh kernel: every check must then pass.
"""

import ast
import copy
import importlib.util
import json
import re
import runpy
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("course_exercises", ROOT / "tools" / "exercises.py")
exercises = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(exercises)

LESSONS = exercises.lesson_paths()
EDITIONS = sorted((ROOT / "notebooks" / "exercises").glob("*.ipynb"))
WITH_EXERCISES = [p for p in LESSONS if exercises.find_exercises(exercises.load(p), p.name)]
REPORT_LINE = re.compile(r"^check\.\w+: (PASSED \(\d+ cases?(; \d+ skipped, see below)?\)"
                         r"|FAILED \(\d+ of \d+ cases?\)|NOT WRITTEN YET)$")


def load(path):
    return exercises.load(path)


def source(cell):
    return exercises.text(cell["source"])


def output_texts(cell):
    """The text of each output of a code cell: a stream's text, a result's text/plain."""
    texts = []
    for out in cell.get("outputs", []):
        if out["output_type"] == "stream":
            texts.append(exercises.text(out["text"]))
        elif out["output_type"] in ("execute_result", "display_data"):
            texts.append(exercises.text(out.get("data", {}).get("text/plain", "")))
        elif out["output_type"] == "error":
            texts.append(f"{out['ename']}: {out['evalue']}")
    return texts


def report_lines(cell):
    """The first line of each check report among the cell's outputs."""
    return [t.strip().splitlines()[0] for t in output_texts(cell) if t.strip().startswith("check.")]


# ---------------------------------------------------------------------------------------
# The committed editions

def test_every_lesson_with_exercises_has_an_edition_and_vice_versa():
    assert [p.name for p in EDITIONS] == [p.name for p in WITH_EXERCISES], (
        "notebooks/exercises/ and the lessons with exercise markup differ: run `python3 course.py exercises`")


@pytest.mark.parametrize("lesson", WITH_EXERCISES, ids=lambda p: p.stem)
def test_each_edition_has_the_cells_the_generator_makes_now(lesson):
    """Sources, cell types, ids and metadata; outputs, execution counts and timings may differ."""
    path = exercises.edition_path(lesson)
    assert path.exists(), f"{path.name} has exercises but no edition: run `python3 course.py exercises`"
    made = exercises.comparable(exercises.make_edition(load(lesson), lesson.name))
    committed = exercises.comparable(load(path))
    for index, (a, b) in enumerate(zip(committed, made)):
        assert a == b, (f"exercises/{path.name} cell {index} is not what the generator makes from the lesson "
                        f"now: run `python3 course.py exercises {lesson.relative_to(ROOT)}`")
    assert len(committed) == len(made), f"exercises/{path.name}: {len(committed)} cells, the generator makes {len(made)}"


def solution_lines(nb):
    """(lines inside solution regions, all other lines of the lesson) of lesson `nb`, stripped.

    Read here with a plain scan of the marker lines, independently of the generator. The
    other lines include the markdown, the code outside the regions and each exercise's task
    and hints (they are written to be shown).
    """
    inside, outside = set(), set()
    for cell in nb["cells"]:
        region = False
        for line in source(cell).splitlines():
            if line.strip() in (exercises.BEGIN, exercises.END):
                region = line.strip() == exercises.BEGIN
                continue
            (inside if region else outside).add(line.strip())
        spec = cell.get("metadata", {}).get("exercise")
        if spec:
            for text in [spec["task"]] + list(spec["hints"]):
                outside |= {line.strip() for line in text.splitlines()}
    return inside, outside


@pytest.mark.parametrize("edition", EDITIONS, ids=lambda p: p.stem)
def test_no_edition_shows_a_solution(edition):
    """No marker, and no line of a solution region that the lesson shows nowhere else.

    What proves a leak: a line that the lesson has only inside its solution regions. A line
    that is also outside them (a `return dx, dw, db` after the region, a `)`, a line quoted
    in the prose or in a hint) may appear in the edition for that reason, so it proves
    nothing and is not counted; neither are blank lines and lines without a letter or digit.
    The whole file is searched, outputs included, so a traceback or a printed source that
    shows the solution counts too.
    """
    raw = edition.read_text(encoding="utf-8")
    assert "BEGIN SOLUTION" not in raw and "END SOLUTION" not in raw, f"exercises/{edition.name} has a marker"
    inside, outside = solution_lines(load(edition.parent.parent / edition.name))
    secret = {line for line in inside - outside if re.search(r"[A-Za-z0-9]", line)}
    nb = load(edition)
    shown = set()
    for cell in nb["cells"]:
        for text in [source(cell)] + (output_texts(cell) if cell["cell_type"] == "code" else []):
            shown |= {line.strip() for line in text.splitlines()}
    leaked = sorted(secret & shown)
    assert not leaked, f"exercises/{edition.name} shows solution lines: {leaked}"


@pytest.mark.parametrize("lesson", WITH_EXERCISES, ids=lambda p: p.stem)
def test_each_unsolved_edition_reports_every_exercise_not_written(lesson):
    """The committed (unsolved) run: every exercise's check cell says NOT WRITTEN YET, so the
    slow test's solved run is a different run. A stub that a later cell calls says once, in
    that run, that it falls back to cnnlib's version."""
    nb = load(lesson)
    edition = load(exercises.edition_path(lesson))
    position = {cell["id"]: i for i, cell in enumerate(edition["cells"])}
    for e in exercises.find_exercises(nb, lesson.name):
        check_id = nb["cells"][e.check_index]["id"]
        reports = report_lines(edition["cells"][position[check_id]])
        assert reports and all(r.endswith(": NOT WRITTEN YET") for r in reports), (
            f"exercises/{lesson.name}: the check of {e.name} reports {reports}, expected NOT WRITTEN YET")
        later = [c for c in edition["cells"][position[nb["cells"][e.index]["id"]]:]
                 if c["cell_type"] == "code" and c["id"] != check_id]
        called = any(re.search(rf"\b{e.name}\(", source(c)) for c in later[1:])
        notice = re.compile(rf"(?<![\w.]){e.name} is not written yet: the cells below use ")
        said = sum(len(notice.findall("".join(output_texts(c)))) for c in later)
        if e.fallback is not None and called:
            assert said == 1, f"exercises/{lesson.name}: {e.name} falls back, and says so {said} times, not once"


@pytest.mark.slow
@pytest.mark.parametrize("lesson", WITH_EXERCISES, ids=lambda p: p.stem)
def test_each_edition_with_its_solutions_put_back_passes_every_check(lesson, tmp_path):
    """The edition, solved (regions kept), run top to bottom in a fresh kernel: all PASSED."""
    import nbclient
    import nbformat

    solved = exercises.make_edition(load(lesson), lesson.name, keep_solutions=True)
    nb = nbformat.reads(exercises.dumps(solved), as_version=4)
    folder = ROOT / "notebooks" / "exercises"
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(folder if folder.exists() else tmp_path)}}).execute()
    reports, said = [], []
    for cell in nb.cells:
        if cell.cell_type == "code":
            reports += report_lines(cell)
            said += output_texts(cell)
    n = len(exercises.find_exercises(load(lesson), lesson.name))
    assert len(reports) >= n, f"{lesson.name} solved: {len(reports)} check report(s) for {n} exercises"
    for report in reports:
        assert REPORT_LINE.match(report) and ": PASSED (" in report, f"{lesson.name} solved: {report}"
    for text in said:
        assert "FAILED" not in text and "NOT WRITTEN YET" not in text and "is not written yet" not in text, (
            f"{lesson.name} solved: {text[:400]}")


def test_the_generator_uses_only_the_standard_library():
    tree = ast.parse((ROOT / "tools" / "exercises.py").read_text(encoding="utf-8"))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported and imported <= sys.stdlib_module_names, imported - sys.stdlib_module_names


# ---------------------------------------------------------------------------------------
# The generator on synthetic lessons

def md(text, cell_id, **metadata):
    return {"cell_type": "markdown", "id": cell_id, "metadata": metadata, "source": exercises.lines(text)}


def code(text, cell_id, **metadata):
    return {"cell_type": "code", "id": cell_id, "metadata": metadata, "source": exercises.lines(text),
            "outputs": [{"output_type": "stream", "name": "stdout", "text": ["lesson output\n"]}],
            "execution_count": 1}


SCALER = """\
class Scaler:
    def __init__(self, k):
        self.k = k

    def __call__(self, x):
        if x is None:
            # BEGIN SOLUTION
            return 0
            # END SOLUTION
        # BEGIN SOLUTION
        y = self.k * x
        return y
        # END SOLUTION

print(Scaler(2)(3))"""

DOUBLE = """\
def double(x):
    # BEGIN SOLUTION
    return 2 * x
    # END SOLUTION"""


def synthetic():
    """A small lesson with two exercises: a class (with a fallback) and a function (without)."""
    scaler = {"name": "Scaler", "fallback": "lambda k: (lambda x: k * x)",
              "task": "Write `Scaler`, see [lesson 2](02-dense.ipynb).",
              "hints": ["Multiply.", "Use `self.k`, as in [this](https://example.org/x.ipynb)."]}
    double = {"name": "double", "fallback": None, "task": "Write `double`.", "hints": ["Add x to itself."]}
    cells = [
        md("# Lesson 3: Things and stuff\n\nSee [lesson 2](02-dense.ipynb#top), [above](#here), "
           "<a href=\"01-welcome.ipynb\">lesson 1</a> and [the course](../README.md).", "title0"),
        code("import numpy as np\nfrom cnnlib import check", "imports"),
        code(SCALER, "scaler", exercise=scaler, execution={"iopub.status.idle": "2026"}),
        code("check.something(Scaler)", "check-scaler"),
        md("The solution, line by line.", "walkthrough", tags=["lesson-only"]),
        code(DOUBLE, "double", exercise=double),
        code("check.double(double)", "check-double"),
        md("Next: [lesson 4](04-next.ipynb).", "end"),
    ]
    return {"cells": cells, "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                          "language": "python"}, "widgets": {"state": {}}},
            "nbformat": 4, "nbformat_minor": 5}


def by_id(nb):
    return {cell["id"]: cell for cell in nb["cells"]}


def test_the_edition_of_a_synthetic_lesson():
    edition = exercises.make_edition(synthetic(), "03-things.ipynb")
    cells = by_id(edition)
    assert [c["id"] for c in edition["cells"]] == [
        "title0-title", "title0", "imports", "scaler-task", "scaler", "check-scaler", "scaler-hints",
        "double-task", "double", "check-double", "double-hints", "end"]  # lesson-only cell dropped

    title = source(cells["title0-title"])
    assert title.startswith("# Lesson 3, exercise edition: Things and stuff\n\n")
    assert "[lesson 3](../03-things.ipynb)" in title and "hints" in title and "falls back" in title
    assert source(cells["title0"]) == ("See [lesson 2](../02-dense.ipynb#top), [above](#here), "
                                       "<a href=\"../01-welcome.ipynb\">lesson 1</a> and [the course](../../README.md).")
    assert source(cells["end"]) == "Next: [lesson 4](../04-next.ipynb)."

    assert source(cells["scaler"]) == """\
@check.exercise(fallback=lambda k: (lambda x: k * x))
class Scaler:
    def __init__(self, k):
        self.k = k

    def __call__(self, x):
        if x is None:
            # Your code here.
            raise NotImplementedError("Scaler: not written yet")
        # Your code here.
        raise NotImplementedError("Scaler: not written yet")

print(Scaler(2)(3))"""
    assert source(cells["double"]) == """\
def double(x):
    # Your code here.
    raise NotImplementedError("double: not written yet")"""  # no fallback: no decorator
    assert source(cells["scaler-task"]) == "### Exercise: Scaler\n\nWrite `Scaler`, see [lesson 2](../02-dense.ipynb)."
    assert source(cells["scaler-hints"]) == (
        "<details><summary>Hint 1</summary>\n\nMultiply.\n\n"
        "<details><summary>Hint 2</summary>\n\nUse `self.k`, as in [this](https://example.org/x.ipynb).\n\n"
        "</details>\n</details>")
    assert source(cells["double-hints"]) == "<details><summary>Hint 1</summary>\n\nAdd x to itself.\n\n</details>"

    for cell in edition["cells"]:
        assert "exercise" not in cell["metadata"] and "execution" not in cell["metadata"]
        if cell["cell_type"] == "code":
            assert (cell["outputs"], cell["execution_count"]) == ([], None)
    assert edition["metadata"] == {"kernelspec": synthetic()["metadata"]["kernelspec"]}  # no saved widgets


def test_the_solved_edition_keeps_the_regions_without_their_markers():
    edition = exercises.make_edition(synthetic(), "03-things.ipynb", keep_solutions=True)
    scaler = source(by_id(edition)["scaler"])
    assert "        y = self.k * x\n        return y\n" in scaler and "            return 0\n" in scaler
    assert "SOLUTION" not in scaler and "NotImplementedError" not in scaler
    assert scaler.startswith("@check.exercise(fallback=")


def test_generation_is_deterministic_and_written_as_jupyter_writes():
    a = exercises.dumps(exercises.make_edition(synthetic(), "03-things.ipynb"))
    shuffled = json.loads(json.dumps(synthetic(), sort_keys=True))  # the same lesson, keys in another order
    assert exercises.dumps(exercises.make_edition(shuffled, "03-things.ipynb")) == a
    assert a.endswith("}\n") and a.startswith('{\n "cells": [\n  {\n')
    assert json.loads(a)["cells"][0]["source"][0] == "# Lesson 3, exercise edition: Things and stuff\n"


def test_a_lesson_without_exercises_has_no_edition():
    lesson = synthetic()
    lesson["cells"] = [c for c in lesson["cells"] if "exercise" not in c["metadata"]]
    assert exercises.make_edition(lesson, "03-things.ipynb") is None


def test_write_editions_keeps_unchanged_editions_and_removes_stale_ones(tmp_path):
    lesson = tmp_path / "03-things.ipynb"
    lesson.write_text(json.dumps(synthetic()), encoding="utf-8")
    edition = tmp_path / "exercises" / "03-things.ipynb"
    assert exercises.write_editions([lesson]) == [(edition, "new")]
    first = edition.read_bytes()

    executed = load(edition)  # as if executed: outputs, counts and timings
    executed["cells"][2]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["ran\n"]}]
    executed["cells"][2]["execution_count"] = 1
    executed["cells"][2]["metadata"]["execution"] = {"iopub.status.idle": "now"}
    edition.write_text(exercises.dumps(executed), encoding="utf-8")
    assert exercises.write_editions([lesson]) == [(edition, "unchanged")]
    assert load(edition) == executed

    changed = synthetic()
    changed["cells"][7]["source"] = ["The end."]
    lesson.write_text(json.dumps(changed), encoding="utf-8")
    assert exercises.write_editions([lesson], check_only=True) == [(edition, "changed")]
    assert load(edition) == executed  # check_only writes nothing
    assert exercises.write_editions([lesson]) == [(edition, "changed")]
    assert edition.read_bytes() != first and source(load(edition)["cells"][-1]) == "The end."

    changed["cells"] = [c for c in changed["cells"] if "exercise" not in c["metadata"]]
    lesson.write_text(json.dumps(changed), encoding="utf-8")
    assert exercises.write_editions([lesson]) == [(edition, "removed")]
    assert not edition.exists()


def test_course_py_exercises_executes_only_the_editions_that_changed(tmp_path):
    lesson = tmp_path / "03-things.ipynb"
    lesson.write_text(json.dumps(synthetic()), encoding="utf-8")
    namespace = runpy.run_path(str(ROOT / "course.py"), run_name="course_under_test")["exercises"].__globals__
    executed = []
    namespace.update(say=lambda message: None, execute=lambda paths: executed.append(paths) or 0)
    assert namespace["exercises"]([str(lesson)]) == 0
    assert executed == [[str(tmp_path / "exercises" / "03-things.ipynb")]]
    assert namespace["exercises"]([str(lesson)]) == 0 and len(executed) == 1  # unchanged: not run again
    assert namespace["exercises"](["--force", str(lesson)]) == 0 and len(executed) == 2


def with_cell(index, **changes):
    lesson = synthetic()
    lesson["cells"][index].update(changes)
    return lesson


def with_exercise(index, **changes):
    lesson = synthetic()
    lesson["cells"][index]["metadata"]["exercise"].update(changes)
    return lesson


def with_source(index, text):
    return with_cell(index, source=exercises.lines(text))


MALFORMED = {
    "BEGIN never closed": (with_source(5, "def double(x):\n    # BEGIN SOLUTION\n    return 2 * x"),
                           r"cell 5 \(id double\), line 2: '# BEGIN SOLUTION' is never closed"),
    "END without BEGIN": (with_source(5, "def double(x):\n    return 2 * x\n    # END SOLUTION"),
                          r"cell 5 \(id double\), line 3: '# END SOLUTION' without a '# BEGIN SOLUTION'"),
    "BEGIN inside a region": (with_source(5, DOUBLE.replace("return", "# BEGIN SOLUTION\n    return")),
                              r"cell 5 \(id double\), line 3: '# BEGIN SOLUTION' inside the region opened on line 2"),
    "END indented differently": (with_source(5, DOUBLE.replace("    # END", "# END")),
                                 r"cell 5 .*line 4: '# END SOLUTION' is indented unlike"),
    "misspelled marker": (with_source(5, DOUBLE.replace("# BEGIN SOLUTION", "# begin solution here")),
                          r"cell 5 .*line 2: write the marker as '# BEGIN SOLUTION'"),
    "no region": (with_source(5, "def double(x):\n    return 2 * x"),
                  r"cell 5 .*exercise double has no '# BEGIN SOLUTION' \.\.\. '# END SOLUTION' region"),
    "name not defined in the cell": (with_exercise(5, name="triple"),
                                     r"cell 5 .*exercise triple: the cell defines no function or class 'triple'"),
    "region outside the def": (with_source(5, DOUBLE + "\n\n# BEGIN SOLUTION\nprint(double(2))\n# END SOLUTION"),
                               r"cell 5 .*lines 6-8: the solution region is outside def double \(lines 1-3\)"),
    "region in another def": (with_source(5, "def helper():\n    # BEGIN SOLUTION\n    pass\n    # END SOLUTION\n\n"
                                             + DOUBLE),
                              r"cell 5 .*lines 2-4: the solution region is outside def double"),
    "no check cell after it": (with_source(6, "print(double(2))"),
                               r"cell 5 .*exercise double: the cell right after it \(.*cell 6 \(id check-double\)\) "
                               r"must be its check cell"),
    "last cell": ({**synthetic(), "cells": synthetic()["cells"][:6]},
                  r"cell 5 .*exercise double has no check cell after it"),
    "check cell lesson-only": (with_cell(6, metadata={"tags": ["lesson-only"]}),
                               r"cell 5 .*its check cell .* must be neither lesson-only"),
    "empty hints": (with_exercise(5, hints=[]), r"cell 5 .*exercise double: hints must be a non-empty list"),
    "an empty hint": (with_exercise(2, hints=["Multiply.", "  "]), r"cell 2 \(id scaler\): exercise Scaler: hint 2 is empty"),
    "empty task": (with_exercise(5, task=""), r"cell 5 .*exercise double: the task is empty"),
    "missing key": (with_cell(5, metadata={"exercise": {"name": "double", "task": "t", "hints": ["h"]}}),
                    r"cell 5 .*lacks \['fallback'\]"),
    "unknown key": (with_exercise(5, hint=["h"]), r"cell 5 .*unknown keys \['hint'\]"),
    "bad fallback": (with_exercise(2, fallback="cnnlib.Scaler("), r"cell 2 .*fallback 'cnnlib.Scaler\(' is not a Python"),
    "markers without exercise metadata": (with_source(1, "from cnnlib import check\n# BEGIN SOLUTION\nx = 1\n# END SOLUTION"),
                                          r"cell 1 \(id imports\): solution markers in a cell without 'exercise' metadata"),
    "no check import": (with_source(1, "import numpy as np"), r"cell 2 .*no code cell before it does `from cnnlib import check`"),
    "exercise on markdown": (with_cell(5, cell_type="markdown"), r"cell 5 .*is on a markdown cell"),
    "exercise lesson-only": (with_cell(5, metadata={**synthetic()["cells"][5]["metadata"], "tags": ["lesson-only"]}),
                             r"cell 5 .*is tagged 'lesson-only'"),
    "no lesson title": (with_source(0, "Some text"), r"cell 0 must be markdown starting with '# Lesson N: Title'"),
}


@pytest.mark.parametrize("case", MALFORMED, ids=str)
def test_malformed_markup_is_refused_naming_notebook_and_cell(case):
    lesson, message = MALFORMED[case]
    with pytest.raises(exercises.ExerciseMarkupError) as raised:
        exercises.make_edition(copy.deepcopy(lesson), "03-things.ipynb")
    assert str(raised.value).startswith("03-things.ipynb: "), str(raised.value)
    assert re.search(message, str(raised.value)), str(raised.value)


def test_nbval_collects_the_editions_and_nothing_but_notebooks():
    """`course.py test` passes `notebooks --nbval` to pytest: the editions are collected with
    the lessons, and the generator (tools/, outside notebooks/) is not collected at all."""
    import subprocess

    result = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:xdist",
                             "-p", "no:cacheprovider", "--nbval", "notebooks"],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    files = {line.split("::")[0] for line in result.stdout.splitlines() if "::" in line}
    assert files == {str(p.relative_to(ROOT)) for p in LESSONS + EDITIONS}, sorted(files)


def test_the_generator_script_checks_writes_and_reports_markup_errors(tmp_path, capsys):
    lesson = tmp_path / "03-things.ipynb"
    lesson.write_text(json.dumps(synthetic()), encoding="utf-8")
    edition = tmp_path / "exercises" / "03-things.ipynb"
    assert exercises.main(["--check", str(lesson)]) == 1 and not edition.exists()
    assert "out of date" in capsys.readouterr().err
    assert exercises.main([str(lesson)]) == 0 and edition.exists()
    assert exercises.main(["--check", str(lesson)]) == 0
    lesson.write_text(json.dumps(with_exercise(5, hints=[])), encoding="utf-8")
    assert exercises.main([str(lesson)]) == 1
    assert "exercise markup error: 03-things.ipynb: cell 5" in capsys.readouterr().err
