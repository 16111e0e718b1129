"""Launch links come from one place: pyproject.toml's [tool.course] (tools/links.py).

Every Binder and Colab link, and the Colab cell's pip install, in README.md,
notebooks/README.md and every notebook must carry that repository and branch; and
`python3 course.py links OWNER/NAME [--branch BRANCH]` rewrites them all, as a copy of the
repository shows.
"""

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("course_links", ROOT / "tools" / "links.py")
links = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(links)


def test_every_launch_link_agrees_with_pyproject():
    wrong = links.disagreements()
    assert not wrong, ("launch links that disagree with pyproject.toml's [tool.course] (run "
                       "`python3 course.py links OWNER/NAME`):\n" + "\n".join(wrong))


def test_the_course_has_launch_links_of_every_kind():
    kinds = {}
    for path in links.files_with_links():
        for kind, *_ in links.find_links(path.read_text(encoding="utf-8")):
            kinds[kind] = kinds.get(kind, 0) + 1
    notebooks = len(links.notebook_files())
    assert kinds.get("binder", 0) >= notebooks and kinds.get("colab", 0) >= notebooks, kinds
    assert kinds.get("pip", 0) >= notebooks, kinds


def test_the_readme_badge_opens_the_start_page():
    repository, branch = links.read_home()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"({links.binder_url(repository, branch, '00-start-here.ipynb')})" in readme
    assert f"({links.colab_url(repository, branch, '00-start-here.ipynb')})" in readme


def test_launch_links_name_files_that_exist():
    for path in links.files_with_links():
        for kind, _, _, tail, link in links.find_links(path.read_text(encoding="utf-8")):
            if kind == "pip":
                continue
            target = tail.removeprefix("?urlpath=lab/tree/").removeprefix("/")
            assert target and (ROOT / target).exists(), f"{path.relative_to(ROOT)}: {link} names no file"


@pytest.mark.parametrize("repository, branch, message", [
    ("someone", "main", "not of the form OWNER/NAME"),
    ("some/one/else", "main", "not of the form OWNER/NAME"),
    ("-someone/x", "main", "not a GitHub owner"),
    ("some--one/x", "main", "not a GitHub owner"),
    ("someone/with space", "main", "not a GitHub repository name"),
    ("someone/..", "main", "not a GitHub repository name"),
    ("someone/x", "feature/y", "not a branch name"),
    ("someone/x", "-x", "not a branch name"),
    ("someone/x", "a..b", "not a branch name"),
])
def test_a_bad_address_is_refused_with_a_reason(repository, branch, message):
    with pytest.raises(ValueError, match=message):
        links.validate(repository, branch)


def test_good_addresses_pass():
    for repository in ("someone/somewhere", "Some-Org/cnn-from-scratch", "a/b.c_d-e"):
        links.validate(repository, "main")
    links.validate("someone/x", "release-1.2")


def repository_copy(tmp_path):
    """What `links` reads and writes, copied: pyproject.toml, the READMEs, notebooks/, course.py, tools/."""
    copy = tmp_path / "repo"
    copy.mkdir()
    for name in ("pyproject.toml", "README.md", "course.py"):
        shutil.copy(ROOT / name, copy / name)
    shutil.copytree(ROOT / "tools", copy / "tools", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "notebooks", copy / "notebooks",
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    return copy


def run_links(copy, *args):
    return subprocess.run([sys.executable, "course.py", "links", *args], cwd=copy,
                          capture_output=True, text=True, timeout=120)


def editions_status(copy):
    """What `tools/exercises.py --check` says of each edition in `copy` (which are up to date)."""
    return subprocess.run([sys.executable, "tools/exercises.py", "--check"], cwd=copy, capture_output=True,
                          text=True, timeout=120).stdout


def test_course_py_links_rewrites_every_launch_link(tmp_path):
    copy = repository_copy(tmp_path)
    status = editions_status(copy)
    before = {p: p.read_text(encoding="utf-8") for p in links.files_with_links(copy)}
    result = run_links(copy, "someone/somewhere", "--branch", "teaching")
    assert result.returncode == 0, result.stdout + result.stderr
    assert links.read_home(copy) == ("someone/somewhere", "teaching")
    assert not links.disagreements(copy)
    for path in [copy / "pyproject.toml"] + links.files_with_links(copy):
        text = path.read_text(encoding="utf-8")
        assert "OWNER/" not in text, f"{path.relative_to(copy)} still has the placeholder"
        if path.suffix == ".ipynb":
            json.loads(text)  # still a notebook
            assert "someone/somewhere" in text
    found = [link for p in links.files_with_links(copy) for link in links.find_links(p.read_text(encoding="utf-8"))]
    assert found and all((repo, branch) == ("someone/somewhere", "teaching") for _, repo, branch, _, _ in found)
    # Only the address changed: the same links, in the same places, with the same paths.
    for path, old in before.items():
        assert path.read_text(encoding="utf-8") == links.rewrite(old, "someone/somewhere", "teaching")
    assert len(found) == sum(len(links.find_links(old)) for old in before.values())

    # Without --branch the branch stays; the editions the generator would make now have the new badges.
    result = run_links(copy, "other/place")
    assert result.returncode == 0 and links.read_home(copy) == ("other/place", "teaching")
    assert not links.disagreements(copy)
    assert editions_status(copy) == status  # the generator agrees with the rewritten editions


@pytest.mark.parametrize("args, message", [
    (["someone"], "not of the form OWNER/NAME"),
    (["someone/x", "--branch", "a/b"], "not a branch name"),
    ([], "usage: "),
    (["someone/x", "--branch"], "needs a branch name"),
])
def test_course_py_links_refuses_a_bad_argument_and_changes_nothing(tmp_path, args, message):
    copy = repository_copy(tmp_path)
    before = {p: p.read_bytes() for p in [copy / "pyproject.toml"] + links.files_with_links(copy)}
    result = run_links(copy, *args)
    assert result.returncode != 0 and message in result.stderr, result.stdout + result.stderr
    assert all(p.read_bytes() == data for p, data in before.items())
