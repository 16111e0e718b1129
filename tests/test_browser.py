"""Every lesson in a real browser: JupyterLab opens it, Run All runs it, every widget renders.

nbval checks what the kernel returns; it cannot see a slider drawn as plain text or
"Error displaying widget". Here JupyterLab runs on 127.0.0.1 and Debian's Chromium, driven
by Playwright, opens each lesson (a copy without its saved outputs), runs all cells from the
Run menu and visits every cell. Each cell must show the same number of figures as the
committed run, and each widget cell the same sliders, dropdowns, toggles and progress bars,
as live DOM. The explorers must answer a slider moved by the keyboard.

Screenshots of each lesson (its top, and each widget cell before and after the sliders
moved) go to build/browser-screenshots/ (or $CNN_SCREENSHOTS); the test summary names the
folder. A lesson that fails leaves a screenshot of the page as it was.

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

ROOT = Path(__file__).resolve().parent.parent
LESSONS = sorted((ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))
RUN_TIMEOUT = 300  # seconds for one lesson's Run All; they take 2-8 s in a kernel of their own


def unavailable(reason):
    if os.environ.get("CNN_REQUIRE_BROWSER") == "1":
        pytest.fail(reason + " (CNN_REQUIRE_BROWSER=1, so this is a failure, not a skip)")
    pytest.skip(reason)


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """(server, browser): JupyterLab serving output-free copies of the lessons, and Chromium."""
    if not (os.path.isfile(labdriver.CHROMIUM) and os.access(labdriver.CHROMIUM, os.X_OK)):
        unavailable(f"Chromium not found at {labdriver.CHROMIUM}. On Debian: `sudo apt install chromium`. "
                    "Elsewhere, set CNN_CHROMIUM to a Chrome or Chromium executable.")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable('Python Playwright is not installed: run `python3 course.py setup` '
                    '(or pip install -e ".[dev,browser]").')

    root = tmp_path_factory.mktemp("lab") / "notebooks"
    root.mkdir()
    for path in LESSONS:
        (root / path.name).write_text(json.dumps(labdriver.strip_outputs(load(path))), encoding="utf-8")
    labdriver.screenshot_folder().mkdir(parents=True, exist_ok=True)

    server = labdriver.LabServer(root, root.parent / "home")
    try:
        server.start()
        with sync_playwright() as playwright:
            browser = labdriver.launch_chromium(playwright)
            try:
                yield server, browser
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


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.stem)
def test_lesson_runs_in_jupyterlab_and_its_widgets_render(lab, path):
    server, browser = lab
    committed = load(path)
    expected = labdriver.expected_outputs(committed)
    code = sorted(expected)
    shots = labdriver.screenshot_folder()
    for old in shots.glob(f"{path.stem}*.png"):
        old.unlink()  # this lesson's screenshots from an earlier run
    page = browser.new_page(viewport=labdriver.VIEWPORT)
    passed = False
    try:
        problems = labdriver.run_and_inspect(page, server, path.name, expected, RUN_TIMEOUT,
                                             problem_shots=shots / path.stem)
        widget_cells = [i for i in code if expected[i]["widgets"]]
        for index in widget_cells:
            labdriver.reveal(page, index).screenshot(path=shots / f"{path.stem}-cell{index}.png")
        assert not problems, f"{path.name} in JupyterLab:\n" + "\n".join(problems)

        tried = 0
        for index in widget_cells:
            cell = labdriver.reveal(page, index)
            explorers = cell.locator(".cnn-explorer")
            for k in range(explorers.count()):
                EXPLORER_CHECKS.get(path.name, check_explorer_answers)(explorers.nth(k))
                tried += 1
            if explorers.count():
                labdriver.wait_for_idle_kernel(page, path.name)
                cell.screenshot(path=shots / f"{path.stem}-cell{index}-after-moving-sliders.png")
        calls = sum("".join(committed["cells"][i]["source"]).count("_explorer(") for i in code)
        assert tried == calls, f"{path.name}: {calls} explorer call(s) in the code, {tried} explorer(s) tried"

        labdriver.wait_for_idle_kernel(page, path.name)
        log = labdriver.log_console_entries(page)
        assert not log, f"{path.name}: the Log Console shows\n" + "\n".join(log)[:2000]

        labdriver.reveal(page, 0)
        page.screenshot(path=shots / f"{path.stem}.png")
        passed = True
    finally:
        if not passed:
            page.screenshot(path=shots / f"{path.stem}-at-failure.png")
        page.close()
        server.shutdown_kernels()


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
    server, browser = lab
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
    page = browser.new_page(viewport=labdriver.VIEWPORT)
    try:
        problems = labdriver.run_and_inspect(page, server, "canary.ipynb", expected, RUN_TIMEOUT)
        explorer = labdriver.reveal(page, 3).locator(".cnn-explorer")
        check_explorer_answers(explorer)  # text and picture do change ...
        labdriver.wait_for_idle_kernel(page, "canary.ipynb")
        log = "\n".join(labdriver.log_console_entries(page))  # ... but the callback failed: the log says so
    finally:
        page.close()
        server.shutdown_kernels()
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
