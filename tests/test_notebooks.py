"""The committed lessons and their exercise editions are in the state nbval and learners expect.

nbval re-runs every notebook and compares outputs, but it cannot tell that a notebook was
saved half-run, run out of order, saved with an error, or hides output it should check.
These checks read the committed files only, so they are quick and need no kernel.
"""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))
# The exercise editions (tools/exercises.py makes them) are committed executed too.
EDITIONS = sorted((ROOT / "notebooks" / "exercises").glob("*.ipynb"))
IGNORE = "# NBVAL_IGNORE_OUTPUT"
# What may legitimately vary from run to run, hence the only reasons to ignore a cell's output.
VARYING = re.compile(r"perf_counter|timeit|time\.time|explorer|ipywidgets|widgets\.|fit\(|tqdm|display\(")
MAX_BYTES = 1_500_000


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def code_cells(nb):
    return [c for c in nb["cells"] if c["cell_type"] == "code" and "".join(c["source"]).strip()]


def test_there_are_nine_lessons_numbered_in_order():
    numbers = [int(p.name[:2]) for p in NOTEBOOKS]
    assert numbers == list(range(1, 10)), [p.name for p in NOTEBOOKS]


@pytest.fixture(params=NOTEBOOKS + EDITIONS, ids=lambda p: str(p.relative_to(ROOT / "notebooks")))
def notebook(request):
    return request.param, load(request.param)


def test_kernelspec_is_python3(notebook):
    path, nb = notebook
    assert nb["metadata"].get("kernelspec", {}).get("name") == "python3", path.name


def test_executed_top_to_bottom_in_one_fresh_kernel(notebook):
    path, nb = notebook
    counts = [c["execution_count"] for c in code_cells(nb)]
    assert counts == list(range(1, len(counts) + 1)), f"{path.name}: execution counts {counts}"


def test_no_error_outputs_or_warnings(notebook):
    path, nb = notebook
    for i, cell in enumerate(code_cells(nb)):
        for out in cell.get("outputs", []):
            assert out["output_type"] != "error", f"{path.name} cell {i}: {out.get('ename')}: {out.get('evalue')}"
            if out.get("name") == "stderr":
                text = "".join(out["text"])
                assert "Warning" not in text and "Traceback" not in text, f"{path.name} cell {i}: {text[:300]}"


def test_outputs_ignored_only_where_they_vary(notebook):
    path, nb = notebook
    for cell in code_cells(nb):
        source = "".join(cell["source"])
        if IGNORE in source:
            assert VARYING.search(source), f"{path.name}: output ignored for no visible reason:\n{source[:400]}"


def test_lessons_start_with_a_title_and_stay_small(notebook):
    path, nb = notebook
    first = "".join(nb["cells"][0]["source"])
    assert nb["cells"][0]["cell_type"] == "markdown" and first.startswith("# "), path.name
    assert path.stat().st_size < MAX_BYTES, f"{path.name} is {path.stat().st_size} bytes"


def test_readme_lists_every_lesson_with_a_binder_link():
    text = (ROOT / "notebooks" / "README.md").read_text(encoding="utf-8")
    for path in NOTEBOOKS:
        assert f"({path.name})" in text, f"notebooks/README.md does not link {path.name}"
        assert re.search(r"mybinder\.org/v2/gh/[^)\s]+" + re.escape(path.name), text), (
            f"notebooks/README.md has no Binder link for {path.name}"
        )


def test_readme_lists_every_exercise_edition_with_a_binder_link():
    text = (ROOT / "notebooks" / "README.md").read_text(encoding="utf-8")
    for path in EDITIONS:
        assert f"(exercises/{path.name})" in text, f"notebooks/README.md does not link exercises/{path.name}"
        assert re.search(r"mybinder\.org/v2/gh/[^)\s]+notebooks/exercises/" + re.escape(path.name), text), (
            f"notebooks/README.md has no Binder link for exercises/{path.name}"
        )
