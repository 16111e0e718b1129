"""Every lesson in a real browser: JupyterLab opens it, Run All runs it, every widget renders.

nbval checks what the kernel returns; it cannot see a slider drawn as plain text or
"Error displaying widget". Here JupyterLab runs on 127.0.0.1 and Debian's Chromium, driven
by Playwright, opens each lesson (a copy without its saved outputs), runs all cells from the
Run menu and visits every cell. Each cell must show the same number of figures as the
committed run, and each widget cell the same sliders, dropdowns, toggles and progress bars,
as live DOM. The explorers must answer a slider moved by the keyboard. JupyterLab is loaded
once and opens the notebooks one after another, as a learner opens lesson after lesson
(loading the whole app for each cost 3-4 s of the browser's time per notebook); after a
failure it is loaded afresh.

Screenshots of each lesson (its top, and each widget cell before and after the sliders
moved) go to build/browser-screenshots/ (or $CNN_SCREENSHOTS); the test summary names the
folder. A lesson that fails leaves a screenshot of the page as it was.

The exercise editions (notebooks/exercises/) get the same run, unsolved as committed: every
stub falls back to cnnlib's version, so Run All must reach the last cell with no error, and
every check cell must show its NOT WRITTEN YET report. The hints must be collapsed, the
second opening only after the first. What an edition shares with its lesson is not done
twice: its widget cells whose code is the lesson's (the explorers, on the same cnnlib code
and the same inputs, since a stub falls back to cnnlib) must render, with their Log Console
empty, but their sliders are walked in the lesson's run only. An edition then costs about
what its lesson does, plus its checks' own run time: in one run on 2 cores, before lesson 9 was
split in two, 8-16 s per lesson (124 s for the nine) and 9-34 s per edition (159 s for the eight;
lesson 9's checks train).
Everything else an edition could skip is what it has to prove: that Run All gets through
every stub, and what each cell shows.

Needs Chromium: `sudo apt install chromium` on Debian, or $CNN_CHROMIUM pointing at a Chrome
or Chromium executable. Without it these tests skip, unless $CNN_REQUIRE_BROWSER=1 (CI).
"""

import json
import os
import re
from pathlib import Path

import pytest

import labdriver
from cnnlib.explorers.flatten import describe, flat_index

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
LESSONS = sorted((ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))
EDITIONS = sorted((ROOT / "notebooks" / "exercises").glob("*.ipynb"))
RUN_TIMEOUT = 300  # seconds for one lesson's Run All; each takes under a minute alone (see the start page)


def unavailable(reason):
    if os.environ.get("CNN_REQUIRE_BROWSER") == "1":
        pytest.fail(reason + " (CNN_REQUIRE_BROWSER=1, so this is a failure, not a skip)")
    pytest.skip(reason)


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """(server, page): JupyterLab serving output-free copies of the lessons, loaded in Chromium."""
    if not (os.path.isfile(labdriver.CHROMIUM) and os.access(labdriver.CHROMIUM, os.X_OK)):
        unavailable(f"Chromium not found at {labdriver.CHROMIUM}. On Debian: `sudo apt install chromium`. "
                    "Elsewhere, set CNN_CHROMIUM to a Chrome or Chromium executable.")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable('Python Playwright is not installed: run `python3 course.py setup --tests` '
                    '(or pip install -e ".[lab,test,browser]").')

    root = tmp_path_factory.mktemp("lab") / "notebooks"
    root.mkdir()
    (root / "exercises").mkdir()
    for path in LESSONS + EDITIONS:
        copy = root / path.relative_to(ROOT / "notebooks")
        copy.write_text(json.dumps(labdriver.strip_outputs(load(path))), encoding="utf-8")
    labdriver.screenshot_folder().mkdir(parents=True, exist_ok=True)

    server = labdriver.LabServer(root, root.parent / "home")
    try:
        server.start()
        with sync_playwright() as playwright:
            browser = labdriver.launch_chromium(playwright)
            try:
                page = browser.new_page(viewport=labdriver.VIEWPORT)
                labdriver.open_lab(page, server)
                yield server, page
            finally:
                browser.close()
    finally:
        server.stop()


def slider(explorer, label):
    """The slider whose description is exactly `label` (None: the first enabled one)."""
    sliders = explorer.locator(".widget-slider")
    if label is None:
        return sliders.filter(has=explorer.page.locator(".noUi-handle:not([disabled])")).first
    return sliders.filter(has=explorer.page.locator("label", has_text=re.compile(f"^{re.escape(label)}$")))


def move(explorer, label, key):
    """Press `key` (an arrow key) on a slider's handle, as a learner using the keyboard would."""
    handle = slider(explorer, label).locator(".noUi-handle")
    handle.focus()
    handle.press(key)


def check_explorer_answers(explorer, timeout=20_000):
    """Moving the first enabled slider one step must change both the text and the picture."""
    texts = "el => [...el.querySelectorAll('.widget-html-content')].map(e => e.innerText).join()"
    pictures = "el => [...el.querySelectorAll('img')].map(e => e.src).join()"
    before = {js: explorer.evaluate(js) for js in (texts, pictures)}
    assert before[pictures], "the explorer shows no picture"
    move(explorer, None, "ArrowRight")
    for js, old in before.items():
        explorer.page.wait_for_function(f"([el, old]) => ({js})(el) !== old",
                                        arg=[explorer.element_handle(), old], timeout=timeout)


def check_flatten_explorer(explorer):
    """The flat-index and c/h/w sliders, the order toggle, the text and the picture agree."""
    from playwright.sync_api import expect

    shape = (2, 3, 4)  # as lesson 7 shows it: flatten_explorer(shape=(2, 3, 4), index=17)
    text = explorer.locator(".widget-html-content").first
    picture = explorer.locator(".widget-html-content img")

    def shows(c, h, w, order):
        # Text, picture and sliders are separate widgets, updated one after another: wait for each.
        expect(text).to_contain_text(describe(c, h, w, shape, order), timeout=20_000)
        expect(picture).to_have_attribute("alt", describe(c, h, w, shape, order), timeout=20_000)
        for label, value in [("flat index", flat_index(c, h, w, shape, order)), ("c", c), ("h", h), ("w", w)]:
            expect(slider(explorer, label).locator(".noUi-handle")).to_have_attribute(
                "aria-valuenow", f"{value:.1f}", timeout=20_000)

    shows(1, 1, 1, "C")
    src = picture.get_attribute("src")
    move(explorer, "flat index", "ArrowRight")  # 17 -> 18: w moves, C order
    shows(1, 1, 2, "C")
    assert picture.get_attribute("src") != src, "the picture did not change when the flat index moved"
    explorer.get_by_role("button", name="F", exact=True).click()  # same cell, F order: index 15
    shows(1, 1, 2, "F")
    move(explorer, "h", "ArrowLeft")  # the other way round: h 1 -> 0 moves the flat index
    shows(1, 0, 2, "F")


EXPLORER_CHECKS = {"07-flatten-and-unflatten.ipynb": check_flatten_explorer}


def source(cell):
    return "".join(cell["source"])


def committed_text(cell):
    """What a committed code cell printed and returned, as plain text."""
    parts = []
    for out in cell.get("outputs", []):
        if out["output_type"] == "stream":
            parts.append(source({"source": out["text"]}))
        elif out["output_type"] in ("execute_result", "display_data"):
            parts.append(source({"source": out.get("data", {}).get("text/plain", "")}))
    return "\n".join(parts)


def check_reports(page, committed, code):
    """Each check cell of an unsolved edition shows the NOT WRITTEN YET report it committed.

    Returns the indices of the check cells found.
    """
    found = []
    for index in code:
        wanted = [line for line in committed_text(committed["cells"][index]).splitlines()
                  if re.fullmatch(r"check\.\w+: NOT WRITTEN YET", line)]
        if wanted:
            found.append(index)
            shown = " ".join(labdriver.reveal(page, index).locator(".jp-OutputArea-output").all_inner_texts())
            for line in wanted:
                assert line in shown, f"cell {index} should show {line!r}, shows {shown[:300]!r}"
    return found


def check_hints_open_one_at_a_time(page, nb, screenshot):
    """The first hints cell: all hints folded, Hint 2 hidden until Hint 1 is opened."""
    from playwright.sync_api import expect

    index = next(i for i, c in enumerate(nb["cells"])
                 if c["cell_type"] == "markdown" and source(c).startswith("<details><summary>Hint 1</summary>"))
    hints = source(nb["cells"][index]).count("<details>")
    cell = labdriver.reveal(page, index)
    details = cell.locator(".jp-RenderedMarkdown details")
    expect(details).to_have_count(hints, timeout=10_000)
    assert not any(details.nth(k).evaluate("d => d.open") for k in range(hints)), "a hint is open from the start"
    first = cell.locator("summary", has_text=re.compile("^Hint 1$"))
    expect(first).to_be_visible()
    if hints > 1:
        second = cell.locator("summary", has_text=re.compile("^Hint 2$"))
        expect(second).to_be_hidden()
        first.click()
        expect(second).to_be_visible()
        assert not details.nth(1).evaluate("d => d.open"), "opening hint 1 opened hint 2 too"
    cell.screenshot(path=screenshot)


def notebook_id(path):
    return str(path.relative_to(ROOT / "notebooks"))[:-len(".ipynb")]


# Two classes, because pytest-xdist hands out a class whole: the lessons and the editions can
# then run in the two workers at once, each worker with a JupyterLab of its own.
class TestLessons:
    @pytest.mark.parametrize("path", LESSONS, ids=notebook_id)
    def test_lesson_runs_in_jupyterlab_and_its_widgets_render(self, lab, path):
        run_in_lab(lab, path)


class TestEditions:
    @pytest.mark.parametrize("path", EDITIONS, ids=notebook_id)
    def test_edition_runs_in_jupyterlab_and_its_widgets_render(self, lab, path):
        run_in_lab(lab, path)


def run_in_lab(lab, path):
    """Run All on notebook `path` in JupyterLab, and check every cell, widget and explorer."""
    server, page = lab
    name = path.relative_to(ROOT / "notebooks").as_posix()
    stem = name[:-len(".ipynb")].replace("/", "-")  # exercises-02-...: beside the lesson's screenshots
    edition = name.startswith("exercises/")
    committed = load(path)
    expected = labdriver.expected_outputs(committed)
    code = sorted(expected)
    # In an edition, widget cells with the lesson's code were walked in the lesson's run.
    lesson_sources = {source(c) for c in load(ROOT / "notebooks" / path.name)["cells"]} if edition else set()
    shots = labdriver.screenshot_folder()
    for old in shots.glob(f"{stem}*.png"):
        old.unlink()  # this notebook's screenshots from an earlier run
    passed = False
    try:
        problems = labdriver.run_and_inspect(page, server, name, expected, RUN_TIMEOUT,
                                             problem_shots=shots / stem)
        widget_cells = [i for i in code if expected[i]["widgets"]]
        for index in widget_cells:
            labdriver.reveal(page, index).screenshot(path=shots / f"{stem}-cell{index}.png")
        assert not problems, f"{name} in JupyterLab:\n" + "\n".join(problems)

        if edition:
            assert check_reports(page, committed, code), f"{name}: no check cell shows NOT WRITTEN YET"
            check_hints_open_one_at_a_time(page, committed, shots / f"{stem}-hints.png")

        walked = [i for i in widget_cells if source(committed["cells"][i]) not in lesson_sources]
        tried = 0
        for index in walked:
            cell = labdriver.reveal(page, index)
            explorers = cell.locator(".cnn-explorer")
            for k in range(explorers.count()):
                EXPLORER_CHECKS.get(path.name, check_explorer_answers)(explorers.nth(k))
                tried += 1
            if explorers.count():
                labdriver.wait_for_idle_kernel(page, path.name)
                cell.screenshot(path=shots / f"{stem}-cell{index}-after-moving-sliders.png")
        calls = sum(source(committed["cells"][i]).count("_explorer(") for i in walked)
        assert tried == calls, f"{name}: {calls} explorer call(s) in the code, {tried} explorer(s) tried"

        labdriver.wait_for_idle_kernel(page, path.name)
        log = labdriver.log_console_entries(page)
        assert not log, f"{name}: the Log Console shows\n" + "\n".join(log)[:2000]

        labdriver.reveal(page, 0)
        page.screenshot(path=shots / f"{stem}.png")
        passed = True
    finally:
        if not passed:
            page.screenshot(path=shots / f"{stem}-at-failure.png")
        close(page, server, passed)


def close(page, server, passed):
    """Close the notebook and stop its kernel; after a failure, load JupyterLab afresh, so that
    nothing the failure left (a dialog, a stuck run) reaches the next notebook."""
    if passed:
        labdriver.close_notebooks(page, server)
    else:
        server.shutdown_kernels()
        labdriver.open_lab(page, server)


def code_cell(source):
    return {"cell_type": "code", "metadata": {}, "source": source, "outputs": [], "execution_count": None}


BROKEN_WIDGET = """\
import ipywidgets, traitlets

class Broken(ipywidgets.DOMWidget):  # its front-end code exists nowhere
    _model_module = _view_module = traitlets.Unicode("no-such-module").tag(sync=True)
    _model_name = _view_name = traitlets.Unicode("Nothing").tag(sync=True)

Broken()"""

# A front end without the widget manager shows a widget's text form; this cell shows only that.
WIDGET_AS_TEXT = """\
from IPython.display import display
display({"text/plain": "VBox(children=(IntSlider(value=0),))"}, raw=True)"""

# An explorer that looks as if it works (text and picture change) but whose callback fails.
HALF_BROKEN_EXPLORER = """\
import ipywidgets
from cnnlib.explorers.flatten import _Picture

picture = _Picture((1, 2, 2))
steps = ipywidgets.IntSlider(0, max=3, description="k")
text, image = ipywidgets.HTML("k = 0"), ipywidgets.HTML(picture.html("C", (0, 0, 0)))

def moved(change):
    text.value = f"k = {change['new']}"
    image.value = picture.html("C", (0, change["new"] // 2, change["new"] % 2))
    raise RuntimeError("this callback fails after drawing")

steps.observe(moved, "value")
explorer = ipywidgets.VBox([steps, text, image])
explorer.add_class("cnn-explorer")
explorer"""


def canary_notebook(sources):
    cells = [dict(code_cell(source), id=f"canary-{i}") for i, source in enumerate(sources)]
    return {"nbformat": 4, "nbformat_minor": 5, "cells": cells,
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}}


def test_the_browser_checks_catch_broken_widgets_missing_figures_and_errors(lab):
    """The checks above can fail: a notebook that breaks each of them on purpose fails each."""
    server, page = lab
    sources = [BROKEN_WIDGET, WIDGET_AS_TEXT, "print('no figure here')", HALF_BROKEN_EXPLORER,
               "import sys; print('a message on stderr', file=sys.stderr)", "1 / 0",
               "print('not reached: Run All stops at an error')"]
    (server.root / "canary.ipynb").write_text(json.dumps(canary_notebook(sources)), encoding="utf-8")
    nothing = {"images": 0, "widgets": {}, "stderr": False}
    expected = {i: dict(nothing) for i in range(len(sources))}
    expected[0] = dict(nothing, widgets={".widget-slider": 1})  # as if each were a slider
    expected[1] = dict(nothing, widgets={".widget-slider": 1})
    expected[2] = dict(nothing, images=1)
    expected[3] = dict(nothing, widgets={".widget-slider": 1, ".widget-html": 2})
    passed = False
    try:
        problems = labdriver.run_and_inspect(page, server, "canary.ipynb", expected, RUN_TIMEOUT)
        explorer = labdriver.reveal(page, 3).locator(".cnn-explorer")
        check_explorer_answers(explorer)  # text and picture do change ...
        labdriver.wait_for_idle_kernel(page, "canary.ipynb")
        log = "\n".join(labdriver.log_console_entries(page))  # ... but the callback failed: the log says so
        passed = True
    finally:
        close(page, server, passed)
    report = "\n".join(problems)
    assert "cell 0: a widget did not render" in report, report
    assert "cell 0: 0 x '.widget-slider' in the DOM, expected 1" in report, report
    assert "cell 1: a widget is shown as text" in report, report
    assert "cell 1: 0 x '.widget-slider' in the DOM, expected 1" in report, report
    assert "cell 2: 0 figure image(s), the committed run has 1" in report, report
    assert "cell 4: error output: a message on stderr" in report, report
    assert "cell 5: error output:" in report and "ZeroDivisionError" in report, report
    assert "cell 6: prompt '[ ]:', expected '[7]:'" in report, report
    assert len(problems) == 8, report
    assert "Traceback" in log and "this callback fails after drawing" in log, log
