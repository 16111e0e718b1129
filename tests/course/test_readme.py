"""The README tells a learner what they need, and its Python examples run and print what it says.

Also the other documents beside it: CONTRIBUTING.md and CITATION.cff (valid Citation File
Format 1.2.0), and that every relative link in them leads to a file that exists.
"""

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
import yaml

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
TEXT = README.read_text(encoding="utf-8")
BLOCKS = re.findall(r"```python\n(.*?)```", TEXT, flags=re.S)


def section(title, text=TEXT):
    """The body of the `## title` section of `text` (up to the next `## ` heading)."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"README.md has no '## {title}' section"
    return match[1]


def flat(text):
    return " ".join(text.split())


def test_the_readme_says_what_a_learner_needs():
    needs = flat(section("What you need"))
    for fact in ("3.11 or newer", "633 MB", "816 MB", "2 cores"):
        assert fact in needs, f"'What you need' does not say {fact!r}"
    # The two times are measured ("about N minutes"), never left blank.
    [times] = [line for line in section("What you need").splitlines() if line.startswith("| Time")]
    cells = [cell.strip() for cell in times.strip("|").split("|")[1:]]
    assert len(cells) == 2 and all(re.search(r"about \d+ minutes", c) for c in cells), cells
    # The supported range is pyproject.toml's floors, said once in the README.
    with open(ROOT / "pyproject.toml", "rb") as f:
        project = tomllib.load(f)["project"]
    floors = {Requirement(r).name: next(iter(Requirement(r).specifier)).version for r in project["dependencies"]}
    shown = {"numpy": "NumPy", "matplotlib": "Matplotlib", "scikit-learn": "scikit-learn", "ipywidgets": "ipywidgets"}
    supported = "Python {}+, ".format(project["requires-python"].removeprefix(">=")) + ", ".join(
        f"{label} {floors[name]}+" for name, label in shown.items())
    assert supported in needs, f"'What you need' should state the supported range as {supported!r}"
    assert "`constraints.txt`" in needs and "`.ci/oldest-stack.txt`" in needs


def test_the_oldest_stack_in_the_readme_is_the_one_ci_builds():
    oldest = ROOT / ".ci" / "oldest-stack.txt"
    assert oldest.is_file(), "the README names .ci/oldest-stack.txt, which is missing"
    pins = re.findall(r"^([A-Za-z0-9._-]+)==(\S+)$", oldest.read_text(encoding="utf-8"), re.M)
    names = {"numpy": "NumPy", "matplotlib": "Matplotlib", "scikit-learn": "scikit-learn",
             "ipywidgets": "ipywidgets", "pooch": "pooch", "tqdm": "tqdm", "threadpoolctl": "threadpoolctl"}
    needs = flat(section("What you need"))
    assert pins and {name for name, _ in pins} == set(names)
    for name, version in pins:
        assert f"{names[name]} {version}" in needs, f"the README does not give the oldest stack's {name} {version}"


def test_the_readme_has_the_learners_sections():
    quick = section("Quick start")
    assert "python3 course.py --help" in quick
    trouble = flat(section("Troubleshooting"))
    for topic in ("Chromium", "CNN_CHROMIUM", "report it", "pip install failed", "Out of disk", "git pull",
                  "outside `notebooks/`", "own git branch", "git stash", "`notebooks/exercises/`"):
        assert topic in trouble, f"Troubleshooting does not cover {topic!r}"
    licence = flat(section("Licence"))
    assert "MIT licence" in licence and "[LICENSE](LICENSE)" in licence and "lesson text" in licence
    assert (ROOT / "LICENSE").read_text(encoding="utf-8").startswith("MIT License")
    assert "[CITATION.cff](CITATION.cff)" in section("Cite")
    assert "GitHub issues" in section("Report a problem")


@pytest.mark.parametrize("name", ["README.md", "CONTRIBUTING.md", "notebooks/README.md"])
def test_relative_links_lead_to_files_that_exist(name):
    path = ROOT / name
    text = path.read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    relative = [t for t in targets if not re.match(r"[a-z]+:", t)]
    assert relative, f"{name} has no relative link"
    for target in relative:
        file, _, anchor = target.partition("#")
        linked = (path.parent / file).resolve() if file else path
        assert linked.exists(), f"{name} links {target}, which does not exist"
        if anchor:
            headings = re.findall(r"^#+ (.*)$", linked.read_text(encoding="utf-8"), re.M)
            slugs = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in headings}
            assert anchor in slugs, f"{name} links {target}, but {file} has no such heading"


# Citation File Format 1.2.0: the keys its schema allows at the top level, and those it requires.
CFF_KEYS = {"abstract", "authors", "cff-version", "commit", "contact", "date-released", "doi", "identifiers",
            "keywords", "license", "license-url", "message", "preferred-citation", "references", "repository",
            "repository-artifact", "repository-code", "title", "type", "url", "version"}
CFF_REQUIRED = {"authors", "cff-version", "message", "title"}


def test_citation_cff_is_valid_and_names_this_version():
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    assert isinstance(citation, dict)
    assert set(citation) <= CFF_KEYS, f"keys CFF 1.2.0 does not know: {sorted(set(citation) - CFF_KEYS)}"
    assert CFF_REQUIRED | {"type", "license", "version", "repository-code"} <= set(citation)
    assert citation["cff-version"] == "1.2.0"
    assert citation["type"] == "software" and citation["license"] == "MIT"
    assert all(isinstance(citation[key], str) and citation[key].strip() for key in ("message", "title"))
    authors = citation["authors"]
    assert isinstance(authors, list) and authors and all(
        isinstance(a, dict) and isinstance(a.get("name"), str) and a["name"].strip() for a in authors), authors
    assert re.fullmatch(r"https://github\.com/[^/\s]+/[^/\s]+", citation["repository-code"])
    with open(ROOT / "pyproject.toml", "rb") as f:
        version = tomllib.load(f)["project"]["version"]
    assert citation["version"] == version, f"CITATION.cff says version {citation['version']}, pyproject.toml {version}"


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
