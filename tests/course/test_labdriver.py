"""What the browser test expects of each lesson, read from the committed notebooks (no browser)."""

import json
from pathlib import Path

import pytest

import labdriver

ROOT = Path(__file__).resolve().parents[2]
SLIDERS = labdriver.WIDGET_SELECTORS["IntSliderModel"]


def lesson(stem):
    (path,) = (ROOT / "notebooks").glob(f"{stem}-*.ipynb")
    return json.loads(path.read_text(encoding="utf-8"))


def widget_cells(nb):
    return {i: e["widgets"] for i, e in labdriver.expected_outputs(nb).items() if e["widgets"]}


def test_the_flatten_explorer_cell_expects_four_sliders_a_toggle_and_two_html_widgets():
    nb = lesson("07")
    (index, widgets), = widget_cells(nb).items()
    assert "flatten_explorer(" in "".join(nb["cells"][index]["source"])
    assert widgets == {SLIDERS: 4, ".widget-toggle-buttons": 1, ".widget-html": 2}


@pytest.mark.parametrize("stem, figures", [("09", 5), ("10", 6)])
def test_the_training_lessons_expect_their_figures_and_no_progress_bars(stem, figures):
    # Lessons 9 and 10 train with progress=False (their runs are compared figure by figure, and
    # lesson 9's optional MNIST cell is off by default), so the browser must find every figure
    # and no widget.
    expected = labdriver.expected_outputs(lesson(stem))
    assert widget_cells(lesson(stem)) == {}
    assert sum(e["images"] for e in expected.values()) >= figures


def test_lessons_without_widgets_expect_figures_only_where_they_have_them():
    expected = labdriver.expected_outputs(lesson("02"))
    assert not any(e["widgets"] for e in expected.values())
    assert sum(e["images"] for e in expected.values()) == 1


def with_widget(model_name, saved=True):
    view = {"output_type": "display_data", "metadata": {},
            "data": {labdriver.WIDGET_VIEW: {"model_id": "m1", "version_major": 2, "version_minor": 0}}}
    models = {"m1": {"model_name": model_name, "state": {}}} if saved else {}
    return {"cells": [{"cell_type": "code", "source": "w", "outputs": [view]}],
            "metadata": {"widgets": {"application/vnd.jupyter.widget-state+json": {"state": models}}}}


def test_a_widget_without_saved_state_is_an_error_not_an_empty_expectation():
    with pytest.raises(ValueError, match="no saved state"):
        labdriver.expected_outputs(with_widget("IntSliderModel", saved=False))


def test_a_widget_the_driver_cannot_find_in_the_dom_is_an_error():
    with pytest.raises(ValueError, match="add its DOM selector"):
        labdriver.expected_outputs(with_widget("ColorPickerModel"))
    with pytest.raises(ValueError, match="no control"):
        labdriver.expected_outputs(with_widget("VBoxModel"))


def test_strip_outputs_leaves_the_browser_nothing_to_show_before_it_runs():
    stripped = labdriver.strip_outputs(lesson("07"))
    assert "widgets" not in stripped["metadata"]
    for cell in stripped["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None
    assert lesson("07")["metadata"]["widgets"], "strip_outputs must not change its argument"


@pytest.mark.parametrize("text, is_widget", [
    ("VBox(children=(IntSlider(value=0),))", True),
    ("FlattenExplorer(children=(ToggleButtons(description='order', ...", True),
    ("IntSlider(value=3)", True),
    ("array([1, 2, 3])", False),
    ("(2, 3, 4)", False),
])
def test_a_widget_shown_as_text_is_recognised(text, is_widget):
    assert bool(labdriver.WIDGET_AS_TEXT.match(text)) == is_widget
