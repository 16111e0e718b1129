"""The committed lessons and their exercise editions are in the state nbval and learners expect.

nbval re-runs every notebook and compares outputs, but it cannot tell that a notebook was
saved half-run, run out of order, saved with an error, or hides output it should check.
These checks read the committed files only, so they are quick and need no kernel.
"""

import ast
import importlib.util
import json
import re
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("course_links", ROOT / "tools" / "links.py")
links = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(links)
# The start page (00-start-here.ipynb) and the lessons (01-, 02-, ...): nbval and the browser
# test run them all.
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))
START = ROOT / "notebooks" / "00-start-here.ipynb"
LESSONS = [p for p in NOTEBOOKS if p != START]
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


def test_a_start_page_then_the_lessons_numbered_in_order():
    assert NOTEBOOKS[0] == START, [p.name for p in NOTEBOOKS]
    numbers = [int(p.name[:2]) for p in LESSONS]
    assert len(numbers) >= 9 and numbers == list(range(1, len(numbers) + 1)), [p.name for p in LESSONS]
    for path in LESSONS:
        assert "".join(load(path)["cells"][0]["source"]).startswith(f"# Lesson {int(path.name[:2])}: "), path.name


def test_the_start_page_lists_every_lesson_and_exercise_edition():
    text = "".join("".join(c["source"]) for c in load(START)["cells"] if c["cell_type"] == "markdown")
    for path in LESSONS:
        assert f"]({path.name})" in text, f"00-start-here.ipynb does not link {path.name}"
    for path in EDITIONS:
        assert f"](exercises/{path.name})" in text, f"00-start-here.ipynb does not link exercises/{path.name}"


def test_lesson_1s_roadmap_lists_every_lesson_in_order():
    roadmap = "".join(load(LESSONS[0])["cells"][3]["source"])
    assert roadmap.startswith("## The road ahead"), roadmap[:80]
    items = re.findall(r"^(\d+)\. \[[^]]+\]\(([^)]+)\)", roadmap, re.M)
    assert items == [(str(int(p.name[:2])), p.name) for p in LESSONS], items


def test_the_start_page_shows_a_check_report():
    cells = code_cells(load(START))
    shown = [out.get("data", {}).get("text/plain", "") for c in cells if "check." in "".join(c["source"])
             for out in c["outputs"]]
    shown = ["".join(s) for s in shown]
    assert any(s.startswith("check.relu: FAILED") and "Hint:" in s for s in shown), shown
    assert any(s.startswith("check.relu: PASSED") for s in shown), shown


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


def notebook_path(path):
    """`path` as the launch links name it: relative to notebooks/, e.g. exercises/02-....ipynb."""
    return path.relative_to(ROOT / "notebooks").as_posix()


def test_each_notebook_starts_with_its_own_binder_and_colab_badges(notebook):
    path, nb = notebook
    repository, branch = links.read_home()
    first = "".join(nb["cells"][0]["source"]).split("\n")
    assert first[1:3] == ["", links.badges(notebook_path(path), repository, branch)], (
        f"{path.name}: the title cell's heading must be followed by a blank line and its badges:\n"
        + links.badges(notebook_path(path), repository, branch))


def colab_cell(nb):
    return code_cells(nb)[0]


def test_first_code_cell_installs_the_course_on_colab_only_and_prints_nothing(notebook):
    path, nb = notebook
    cell = colab_cell(nb)
    source = "".join(cell["source"])
    assert 'if "google.colab" in sys.modules:' in source, f"{path.name}: the first code cell is not the Colab cell"
    assert cell["outputs"] == [], f"{path.name}: the Colab cell printed something outside Colab"
    assert IGNORE not in source
    # Outside the `if`, only comments, blank lines and `import sys`: nothing else runs off Colab.
    from IPython.core.inputtransformer2 import TransformerManager

    tree = ast.parse(TransformerManager().transform_cell(source))
    assert [type(node) for node in tree.body] == [ast.Import, ast.If], f"{path.name}: {ast.dump(tree)[:300]}"
    assert ast.unparse(tree.body[0]) == "import sys"
    assert ast.unparse(tree.body[1].test) == "'google.colab' in sys.modules"


def test_the_colab_cells_are_all_the_same():
    sources = {"".join(colab_cell(load(p))["source"]) for p in NOTEBOOKS + EDITIONS}
    assert len(sources) == 1, "the Colab cells differ between notebooks"


class FakeIPython:
    def __init__(self):
        self.magics = []

    def run_line_magic(self, name, line, _stack_depth=1):
        self.magics.append((name, line))


def run_colab_cell(source, on_colab, monkeypatch, ipywidgets_version="7.7.1"):
    """Run the Colab cell with IPython's magics recorded: (magics run, widget manager enabled?)."""
    from IPython.core.inputtransformer2 import TransformerManager

    shell, enabled = FakeIPython(), []
    if on_colab:
        output = types.SimpleNamespace(enable_custom_widget_manager=lambda: enabled.append(True))
        colab = types.ModuleType("google.colab")
        colab.output = output
        google = types.ModuleType("google")
        google.colab = colab
        monkeypatch.setitem(sys.modules, "google", google)
        monkeypatch.setitem(sys.modules, "google.colab", colab)
        monkeypatch.setitem(sys.modules, "google.colab.output", output)
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.setitem(sys.modules, "ipywidgets", types.SimpleNamespace(__version__=ipywidgets_version))
    exec(TransformerManager().transform_cell(source), {"get_ipython": lambda: shell})
    return shell.magics, bool(enabled)


def test_the_colab_cell_installs_the_course_package_and_leaves_colabs_own_packages(monkeypatch):
    source = "".join(colab_cell(load(NOTEBOOKS[0]))["source"])
    assert run_colab_cell(source, False, monkeypatch) == ([], False)

    magics, enabled = run_colab_cell(source, True, monkeypatch)
    repository, branch = links.read_home()
    # One install, of the course with its dependencies: they are ranges that Colab's own stack
    # meets (.ci/run checks that pip then changes nothing else on the oldest supported stack),
    # so pip adds only what is missing and never replaces NumPy under the running kernel.
    assert [(name, line.split()) for name, line in magics] == [
        ("pip", ["install", "--quiet", links.pip_url(repository, branch)])], magics
    assert not enabled  # Colab's own widget manager draws ipywidgets 7's widgets
    assert run_colab_cell(source, True, monkeypatch, ipywidgets_version="8.1.5")[1]


def test_the_colab_cell_stops_with_what_to_do_on_a_numpy_older_than_2(monkeypatch):
    source = "".join(colab_cell(load(NOTEBOOKS[0]))["source"])
    monkeypatch.setitem(sys.modules, "numpy", types.SimpleNamespace(__version__="1.26.4"))
    with pytest.raises(RuntimeError, match=r"needs NumPy 2\.0 or newer, and this runtime has NumPy 1\.26\.4") as error:
        run_colab_cell(source, True, monkeypatch)
    assert "Restart session" in str(error.value) and "numpy>=2" in str(error.value)


def test_lesson_9s_optional_mnist_cell_catches_every_error_the_loader_documents():
    import cnnlib.datasets

    nb = load(ROOT / "notebooks" / "09-training-on-digits.ipynb")
    [source] = ["".join(c["source"]) for c in code_cells(nb) if "load_mnist(" in "".join(c["source"])]
    handlers = [node for node in ast.walk(ast.parse(source)) if isinstance(node, ast.ExceptHandler)]
    assert len(handlers) == 1 and isinstance(handlers[0].type, ast.Tuple), ast.dump(handlers[0])
    caught = {name.id for name in handlers[0].type.elts}
    documented = cnnlib.datasets.load_mnist.__doc__.split("Raises\n")[1]
    # Every exception of the docstring's Raises section but TypeError, a mistake in the call itself.
    raised = set(re.findall(r"^    ([A-Z][A-Za-z]+)$", documented, re.M)) - {"TypeError"}
    assert raised and caught == raised, (caught, raised)


def test_the_colab_cell_says_so_when_the_course_did_not_install(monkeypatch):
    source = "".join(colab_cell(load(NOTEBOOKS[0]))["source"])
    monkeypatch.setitem(sys.modules, "cnnlib", None)  # `import cnnlib` raises ImportError
    with pytest.raises(RuntimeError, match="The course package did not install"):
        run_colab_cell(source, True, monkeypatch)
