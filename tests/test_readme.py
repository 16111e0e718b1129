"""The README's Python examples run, and print what the README says they print."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def test_readme_has_python_examples():
    assert len(BLOCKS) >= 2


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index, capsys):
    exec(compile(BLOCKS[index], f"README.md python block {index}", "exec"), {})
    printed = capsys.readouterr().out
    if "rel_error" in BLOCKS[index]:
        assert float(printed.split()[-1]) < 1e-8
    if "test accuracy" in BLOCKS[index]:
        assert re.search(r"test accuracy 0\.9[89]\d", printed), printed
