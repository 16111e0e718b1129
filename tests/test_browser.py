"""Every lesson in a real browser: JupyterLab opens it, Run All runs it, every widget renders.

nbval checks what the kernel returns; it cannot see a slider drawn as plain text or
"Error displaying widget". Here JupyterLab runs on 127.0.0.1 and Debian's Chromium, driven
by Playwright, opens each lesson (a copy without its saved outputs), runs all cells from the
Run menu and visits every cell. Each cell must show the same number of figures as the
committed run, and each widget cell the same sliders, dropdowns, toggles and progress bars,
as live DOM. The explorers must answer a slider moved by the keyboard.

Screenshots of each lesson (its top, and each widget cell) go to build/browser-screenshots/
(or $CNN_SCREENSHOTS); the test summary names the folder.

Needs Chromium: `sudo apt install chromium` on Debian/Ubuntu, or $CNN_CHROMIUM pointing at a
Chrome/Chromium executable. Without it these tests skip, unless $CNN_REQUIRE_BROWSER=1 (CI).
"""

import json
import os
import shutil
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
def lab(tmp_path_factory, request):
    """(server, browser): JupyterLab serving output-free copies of the lessons, and Chromium."""
    if not (os.path.isfile(labdriver.CHROMIUM) and os.access(labdriver.CHROMIUM, os.X_OK)):
        unavailable(f"Chromium not found at {labdriver.CHROMIUM}. Install it with `sudo apt install chromium` "
                    "(Debian/Ubuntu), or set CNN_CHROMIUM to a Chrome or Chromium executable.")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable('Python Playwright is not installed: run `python3 course.py setup` '
                    '(or pip install -e ".[dev,browser]").')

    root = tmp_path_factory.mktemp("lab") / "notebooks"
    root.mkdir()
    for path in LESSONS:
        (root / path.name).write_text(json.dumps(labdriver.strip_outputs(load(path))), encoding="utf-8")
    screenshots = labdriver.screenshot_folder()
    shutil.rmtree(screenshots, ignore_errors=True)
    screenshots.mkdir(parents=True)
    request.config.stash[labdriver.SCREENSHOTS_KEY] = screenshots

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


def move_slider(explorer, label, key):
    """Press `key` on the slider described `label` (None: the first one that is enabled)."""
    sliders = explorer.locator(".widget-slider")
    if label is not None:
        sliders = sliders.filter(has=explorer.page.locator("label", has_text=label))
    handle = sliders.locator('.noUi-handle:not([disabled])').first
    handle.focus()
    handle.press(key)


def slider_value(explorer, label):
    slider = explorer.locator(".widget-slider").filter(has=explorer.page.locator("label", has_text=label))
    return int(float(slider.locator(".noUi-handle").first.get_attribute("aria-valuenow")))


def check_explorer_answers(explorer):
    """Moving the first slider one step must change the picture or text the explorer shows."""
    shown = "el => [...el.querySelectorAll('img, .widget-html-content')].map(e => e.src || e.innerText).join()"
    before = explorer.evaluate(shown)
    move_slider(explorer, None, "ArrowRight")
    explorer.page.wait_for_function(f"([el, before]) => ({shown})(el) !== before",
                                    arg=[explorer.element_handle(), before], timeout=20_000)
    assert not explorer.locator('[data-mime-type="application/vnd.jupyter.stderr"]').count(), \
        explorer.inner_text()[:500]


def check_flatten_explorer(explorer):
    """The flat-index and c/h/w sliders, the order toggle and the text agree after each move."""
    shape = (2, 3, 4)  # as lesson 7 shows it: flatten_explorer(shape=(2, 3, 4), index=17)
    text = explorer.locator(".widget-html-content").first
    picture = explorer.locator(".widget-html-content img")

    def shows(c, h, w, order):
        from playwright.sync_api import expect

        # Text and picture are two widgets, updated one after the other: wait for both.
        expect(text).to_contain_text(describe(c, h, w, shape, order), timeout=20_000)
        expect(picture).to_have_attribute("alt", describe(c, h, w, shape, order), timeout=20_000)
        assert slider_value(explorer, "flat index") == flat_index(c, h, w, shape, order)
        assert (slider_value(explorer, "c"), slider_value(explorer, "h"), slider_value(explorer, "w")) == (c, h, w)

    shows(1, 1, 1, "C")
    src = picture.get_attribute("src")
    move_slider(explorer, "flat index", "ArrowRight")  # 17 -> 18: w moves, C order
    shows(1, 1, 2, "C")
    assert picture.get_attribute("src") != src, "the picture did not change when the flat index moved"
    explorer.get_by_role("button", name="F", exact=True).click()  # same cell, F order: index 15
    shows(1, 1, 2, "F")
    move_slider(explorer, "h", "ArrowLeft")  # the other way round: h 1 -> 0 moves the flat index
    shows(1, 0, 2, "F")


EXPLORER_CHECKS = {"07-flatten-and-unflatten.ipynb": check_flatten_explorer}


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.stem)
def test_lesson_runs_in_jupyterlab_and_its_widgets_render(lab, path):
    server, browser = lab
    committed = load(path)
    expected = labdriver.expected_outputs(committed)
    code = sorted(expected)
    folder = labdriver.screenshot_folder()
    page = browser.new_page(viewport=labdriver.VIEWPORT)
    try:
        problems = labdriver.run_and_inspect(page, server, path.name, expected, RUN_TIMEOUT,
                                             problem_shots=folder / path.stem)
        assert not problems, f"{path.name} in JupyterLab:\n" + "\n".join(problems)

        tried = 0
        for index in (i for i in code if expected[i]["widgets"]):
            cell = labdriver.reveal(page, index)
            cell.screenshot(path=folder / f"{path.stem}-cell{index}.png")
            explorers = cell.locator(".cnn-explorer")
            for k in range(explorers.count()):
                EXPLORER_CHECKS.get(path.name, check_explorer_answers)(explorers.nth(k))
                tried += 1
            if explorers.count():
                labdriver.wait_for_idle_kernel(page, path.name)
                cell.screenshot(path=folder / f"{path.stem}-cell{index}-after-moving-sliders.png")
        calls = sum("_explorer(" in "".join(committed["cells"][i]["source"]) for i in code)
        assert tried == calls, f"{path.name}: {calls} explorer call(s) in the code, {tried} explorer(s) tried"

        labdriver.reveal(page, 0)
        labdriver.wait_for_idle_kernel(page, path.name)
        page.screenshot(path=folder / f"{path.stem}.png")
    finally:
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


def test_the_browser_checks_catch_a_broken_widget_a_missing_figure_and_an_error(lab):
    """The checks above can fail: a notebook that breaks each of them on purpose fails each."""
    server, browser = lab
    cells = [code_cell(BROKEN_WIDGET), code_cell("print('no figure here')"), code_cell("1 / 0"),
             code_cell("print('not reached: Run All stops at an error')")]
    nb = {"nbformat": 4, "nbformat_minor": 5, "cells": cells,
          "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}}
    for i, cell in enumerate(cells):
        cell["id"] = f"canary-{i}"
    (server.root / "canary.ipynb").write_text(json.dumps(nb), encoding="utf-8")
    expected = {0: {"images": 0, "widgets": {".widget-slider": 1}},  # as if it were a slider
                1: {"images": 1, "widgets": {}}, 2: {"images": 0, "widgets": {}}, 3: {"images": 0, "widgets": {}}}
    page = browser.new_page(viewport=labdriver.VIEWPORT)
    try:
        problems = labdriver.run_and_inspect(page, server, "canary.ipynb", expected, RUN_TIMEOUT)
    finally:
        page.close()
        server.shutdown_kernels()
    report = "\n".join(problems)
    assert "cell 0: a widget did not render" in report, report
    assert "cell 0: 0 x '.widget-slider' in the DOM, expected 1" in report, report
    assert "cell 1: 0 figure image(s), the committed run has 1" in report, report
    assert "cell 2: error output:" in report and "ZeroDivisionError" in report, report
    assert "cell 3: prompt '[ ]:', expected '[4]:'" in report, report
    assert len(problems) == 5, report
