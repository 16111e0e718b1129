"""Links to the course's home come from one place: pyproject.toml's [tool.course] (tools/links.py).

Every Binder and Colab link, the Colab cell's pip install, and every GitHub link (the issues,
CITATION.cff's repository-code) in README.md, notebooks/README.md, CONTRIBUTING.md,
CITATION.cff and every notebook must carry that repository (and branch); and
`python3 course.py links OWNER/NAME [--branch BRANCH]` rewrites them all, as a copy of the
repository shows: the placeholder notices go with the placeholder, every file is written
whole even when the run is cut short, and a [tool.course] broken by hand is repaired.
"""

import errno
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
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
    assert kinds.get("github", 0) >= 3, kinds  # the README's issues link, CONTRIBUTING's, CITATION.cff's


def test_the_readme_badge_opens_the_start_page():
    repository, branch = links.read_home()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"({links.binder_url(repository, branch, '00-start-here.ipynb')})" in readme
    assert f"({links.colab_url(repository, branch, '00-start-here.ipynb')})" in readme


def test_the_readme_says_where_to_report_a_problem():
    repository, _ = links.read_home()
    for name in ("README.md", "CONTRIBUTING.md"):
        text = (ROOT / name).read_text(encoding="utf-8")
        assert f"({links.issues_url(repository)})" in text, f"{name} does not link the issues"
    section = re.search(r"^## Report a problem\n(.*?)(?=^## |\Z)", (ROOT / "README.md").read_text(encoding="utf-8"),
                        re.M | re.S)
    assert section and links.issues_url(repository) in section[1]


def test_citation_points_at_the_course_home():
    repository, _ = links.read_home()
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    assert citation["repository-code"] == links.repository_url(repository)


def test_launch_links_name_files_that_exist():
    for path in links.files_with_links():
        for kind, _, _, tail, link in links.find_links(path.read_text(encoding="utf-8")):
            if kind in ("pip", "github"):
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
    ("OWNER/cnn-from-scratch", "main", "'OWNER' is the placeholder"),
    ("someone-/x", "main", "not a GitHub owner"),
    ("a" * 40 + "/x", "main", "not a GitHub owner"),
    ("someone/" + "x" * 101, "main", "not a GitHub repository name"),
    ("someone/x.git", "main", "give someone/x"),
    ("https://github.com/someone/x", "main", "is a URL: .* here someone/x"),
    ("git@github.com:someone/x.git", "main", "is a URL: .* here someone/x"),
])
def test_a_bad_address_is_refused_with_a_reason(repository, branch, message):
    with pytest.raises(ValueError, match=message):
        links.validate(repository, branch)


def test_good_addresses_pass():
    for repository in ("someone/somewhere", "Some-Org/cnn-from-scratch", "a/b.c_d-e", "owner/x", "OWNER1/x"):
        links.validate(repository, "main")
    links.validate("someone/x", "release-1.2")
    # The placeholder is what the course carries before it has a home: readable, never to be written.
    links.validate("OWNER/cnn-from-scratch", "main", allow_placeholder=True)


def test_links_of_each_kind_are_found_and_rewritten():
    text = ("[b](https://mybinder.org/v2/gh/OWNER/cnn/main?urlpath=lab/tree/notebooks/a.ipynb) "
            "[c](https://colab.research.google.com/github/OWNER/cnn/blob/main/notebooks/a.ipynb)\n"
            "%pip install git+https://github.com/OWNER/cnn@main\n"
            "[issues](https://github.com/OWNER/cnn/issues) git clone https://github.com/OWNER/cnn.git\n"
            "repository-code: \"https://github.com/OWNER/cnn\"\n")
    found = links.find_links(text)
    assert sorted(kind for kind, *_ in found) == ["binder", "colab", "github", "github", "github", "pip"]
    assert {(repo, branch) for _, repo, branch, _, _ in found} == {("OWNER/cnn", "main"), ("OWNER/cnn", None)}
    assert links.rewrite(text, "someone/x", "dev") == (
        "[b](https://mybinder.org/v2/gh/someone/x/dev?urlpath=lab/tree/notebooks/a.ipynb) "
        "[c](https://colab.research.google.com/github/someone/x/blob/dev/notebooks/a.ipynb)\n"
        "%pip install git+https://github.com/someone/x@dev\n"
        "[issues](https://github.com/someone/x/issues) git clone https://github.com/someone/x.git\n"
        "repository-code: \"https://github.com/someone/x\"\n")


def test_a_notice_line_goes_with_the_blank_line_that_set_it_apart():
    notice = "> Not published yet. " + links.NOTICE
    assert links.drop_notices(f"# Title\n\n{notice}\n\nText.\n") == "# Title\n\nText.\n"
    assert links.drop_notices(f"# Title\n\nText.\n\n{notice}") == "# Title\n\nText."
    assert links.drop_notices(f"{notice}\n\nText.\n") == "Text.\n"
    assert links.drop_notices("Nothing to drop.\n\n\nAt all.\n") == "Nothing to drop.\n\n\nAt all.\n"


def repository_copy(tmp_path):
    """What `links` reads and writes, copied: pyproject.toml, README.md, CONTRIBUTING.md,
    CITATION.cff, notebooks/, course.py and tools/."""
    copy = tmp_path / "repo"
    copy.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md", "CONTRIBUTING.md", "CITATION.cff", "course.py"):
        shutil.copy(ROOT / name, copy / name)
    shutil.copytree(ROOT / "tools", copy / "tools", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "notebooks", copy / "notebooks",
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    return copy


def small_copy(tmp_path):
    """A lighter copy for `links` alone: the same text files, the start page, one lesson and its edition."""
    copy = tmp_path / "repo"
    (copy / "notebooks" / "exercises").mkdir(parents=True)
    for name in ("pyproject.toml", "README.md", "CONTRIBUTING.md", "CITATION.cff", "notebooks/README.md",
                 "notebooks/00-start-here.ipynb", "notebooks/02-dense-and-gradient-checking.ipynb",
                 "notebooks/exercises/02-dense-and-gradient-checking.ipynb"):
        shutil.copy(ROOT / name, copy / name)
    return copy


def run_links(copy, *args):
    return subprocess.run([sys.executable, "course.py", "links", *args], cwd=copy,
                          capture_output=True, text=True, timeout=120)


def editions_status(copy):
    """What `tools/exercises.py --check` says of each edition in `copy` (which are up to date)."""
    return subprocess.run([sys.executable, "tools/exercises.py", "--check"], cwd=copy, capture_output=True,
                          text=True, timeout=120).stdout


# `OWNER` other than in the usage notation OWNER/NAME: the placeholder, still claimed.
PLACEHOLDER_CLAIM = re.compile(r"\bOWNER\b(?!/NAME)")


def test_course_py_links_rewrites_every_launch_link(tmp_path):
    copy = repository_copy(tmp_path)
    status = editions_status(copy)
    before = {p: p.read_text(encoding="utf-8") for p in links.files_with_links(copy)}
    assert any(links.NOTICE in old for old in before.values())  # README's "not published yet"
    result = run_links(copy, "someone/somewhere", "--branch", "teaching")
    assert result.returncode == 0, result.stdout + result.stderr
    assert links.read_home(copy) == ("someone/somewhere", "teaching")
    assert not links.disagreements(copy)
    for path in links.files_with_links(copy):
        text = path.read_text(encoding="utf-8")
        assert links.NOTICE not in text, f"{path.relative_to(copy)} still says the links lead nowhere"
        claim = PLACEHOLDER_CLAIM.search(text)
        assert not claim, f"{path.relative_to(copy)} still names the placeholder: {text[claim.start() - 80:claim.end() + 80]!r}"
        if path.suffix == ".ipynb":
            json.loads(text)  # still a notebook
            assert "someone/somewhere" in text
    pyproject = (copy / "pyproject.toml").read_text(encoding="utf-8")
    assert not [line for line in pyproject.splitlines() if "OWNER/" in line and not line.lstrip().startswith("#")]
    found = [link for p in links.files_with_links(copy) for link in links.find_links(p.read_text(encoding="utf-8"))]
    assert found and all(repo == "someone/somewhere" and branch in ("teaching", None)
                         for _, repo, branch, _, _ in found)
    # Only the address changed (and the notices went): the same links, in the same places, with the same paths.
    for path, old in before.items():
        rewritten = links.rewrite(old, "someone/somewhere", "teaching")
        # A notebook's notice goes cell by cell (its JSON is written again), anything else line by line.
        drop = links.drop_notebook_notices if path.suffix == ".ipynb" else links.drop_notices
        assert path.read_text(encoding="utf-8") == drop(rewritten)
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
    (["OWNER/cnn-from-scratch"], "'OWNER' is the placeholder"),
    (["someone/x", "other/y"], "unexpected argument 'other/y'"),
    (["someone/x", "--force"], "unknown option '--force'"),
])
def test_course_py_links_refuses_a_bad_argument_and_changes_nothing(tmp_path, args, message):
    copy = repository_copy(tmp_path)
    before = {p: p.read_bytes() for p in [copy / "pyproject.toml"] + links.files_with_links(copy)}
    result = run_links(copy, *args)
    assert result.returncode != 0 and message in result.stderr, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert all(p.read_bytes() == data for p, data in before.items())


def test_a_placeholder_notice_in_a_notebook_goes_too(tmp_path):
    copy = small_copy(tmp_path)
    start = copy / "notebooks" / "00-start-here.ipynb"
    # The start page may carry a notice of its own: begin from it without, then add one.
    nb = json.loads(links.drop_notebook_notices(start.read_text(encoding="utf-8")))
    first = nb["cells"][0]
    notice = f"**Not published yet:** the badges above lead nowhere. {links.NOTICE}\n"
    first["source"][2:2] = [notice, "\n"]  # a paragraph after the title and the blank line below it
    start.write_text(json.dumps(nb, sort_keys=True, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    with_notice = start.read_text(encoding="utf-8")

    assert links.main(["someone/x"], root=copy) == 0
    after = json.loads(start.read_text(encoding="utf-8"))
    assert links.NOTICE not in start.read_text(encoding="utf-8")
    del first["source"][2:4]
    expected = json.loads(links.rewrite(json.dumps(nb), "someone/x", "main"))
    assert after == expected  # only the notice went, and the address changed
    # Written as Jupyter writes notebooks, as they are committed.
    assert start.read_text(encoding="utf-8") == json.dumps(after, sort_keys=True, indent=1, ensure_ascii=False) + "\n"
    assert with_notice != start.read_text(encoding="utf-8")


def states(copy, old, new):
    """For each file (relative path): "old", "new" or "cut" (neither)."""
    out = {}
    for path in old:
        data = (copy / path).read_bytes()
        out[path] = "old" if data == old[path] else "new" if data == new[path] else "cut"
    return out


def snapshot(copy):
    return {p.relative_to(copy): p.read_bytes() for p in [copy / "pyproject.toml"] + links.files_with_links(copy)}


@pytest.mark.parametrize("failure", [KeyboardInterrupt(), OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))],
                         ids=["Ctrl+C", "disk full"])
def test_an_interrupted_links_leaves_every_file_whole_and_pyproject_last(tmp_path, monkeypatch, capsys, failure):
    finished = small_copy(tmp_path / "finished")
    assert links.main(["someone/x"], root=finished) == 0
    copy = small_copy(tmp_path / "interrupted")
    old, new = snapshot(copy), snapshot(finished)
    changed = [p for p in old if old[p] != new[p]]
    assert len(changed) >= 5 and Path("pyproject.toml") in changed

    real_replace, replaced = os.replace, []

    def replace(source, target):
        if len(replaced) == 2:
            raise failure
        real_replace(source, target)
        replaced.append(Path(target).relative_to(copy))

    monkeypatch.setattr(os, "replace", replace)
    code = links.main(["someone/x"], root=copy)
    monkeypatch.setattr(os, "replace", real_replace)
    err = capsys.readouterr().err
    assert code != 0 and "again" in err and err.count("\n") == 1, err
    now = states(copy, old, new)
    assert "cut" not in now.values(), now
    assert sorted(p for p in changed if now[p] == "new") == sorted(replaced) and len(replaced) == 2
    assert now[Path("pyproject.toml")] == "old"  # written last, so still the old address
    assert not [p for p in copy.rglob("*") if p.name.endswith(".tmp")]  # no temporary file left

    # Running it again completes the change.
    assert links.main(["someone/x"], root=copy) == 0
    assert set(states(copy, old, new).values()) <= {"new"} and snapshot(copy) == new


def test_a_disk_that_fills_while_writing_changes_nothing(tmp_path, monkeypatch, capsys):
    copy = small_copy(tmp_path)
    old = snapshot(copy)
    real_fdopen, opened = os.fdopen, []

    def fdopen(fd, *args, **kwargs):
        opened.append(fd)
        if len(opened) == 3:
            os.close(fd)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_fdopen(fd, *args, **kwargs)

    monkeypatch.setattr(os, "fdopen", fdopen)
    code = links.main(["someone/x"], root=copy)
    monkeypatch.setattr(os, "fdopen", real_fdopen)
    err = capsys.readouterr().err
    assert code != 0 and "No space left on device" in err and "nothing was changed" in err, err
    assert snapshot(copy) == old
    assert not [p for p in copy.rglob("*") if p.name.endswith(".tmp")]


@pytest.mark.parametrize("how", ["no write permission", "cannot create a file"])
def test_a_read_only_checkout_is_refused_in_one_line(tmp_path, monkeypatch, capsys, how):
    # The tests run as root, who may write anywhere: a read-only checkout is simulated.
    copy = small_copy(tmp_path)
    old = snapshot(copy)
    if how == "no write permission":
        monkeypatch.setattr(os, "access", lambda path, mode, **kwargs: mode != os.W_OK)
    else:
        def mkstemp(*args, **kwargs):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), kwargs.get("dir"))
        monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    code = links.main(["someone/x"], root=copy)
    monkeypatch.undo()
    err = capsys.readouterr().err
    assert code != 0 and err.startswith("links: cannot write") and err.count("\n") == 1, err
    assert "nothing was changed" in err
    assert snapshot(copy) == old


def break_course_table(text, how):
    """pyproject.toml's `text` with [tool.course] broken by hand, as `how` says."""
    line = re.compile(r'^repository = "[^"\n]*"$', re.M)
    assert line.search(text), "pyproject.toml has no plain repository line to break"
    if how == "not an address":
        return line.sub('repository = "garbage"', text)
    if how == "not a string":
        return line.sub("repository = 42", text)
    if how == "not TOML":
        return line.sub("repository = garbage with spaces", text)
    if how == "no repository":
        return line.sub("", text)
    if how == "no table":
        return re.sub(r'^\[tool\.course\]\n(?:(?!\[).*\n)*', "", text, flags=re.M)
    if how == "bad branch":
        return re.sub(r'^branch = "[^"\n]*"$', 'branch = "feature/x"', text, flags=re.M)
    raise AssertionError(how)


BROKEN = {
    "not an address": "'garbage' is not of the form OWNER/NAME",
    "not a string": "repository must be a string",
    "not TOML": "pyproject.toml is not valid TOML",
    "no repository": "has no repository",
    "no table": "has no [tool.course] table",
    "bad branch": "not a branch name",
}


@pytest.mark.parametrize("how", BROKEN)
def test_a_hand_broken_course_table_is_named_by_check_and_repaired_by_links(tmp_path, capsys, how):
    copy = small_copy(tmp_path)
    pyproject = copy / "pyproject.toml"
    original = pyproject.read_text(encoding="utf-8")
    pyproject.write_text(break_course_table(original, how), encoding="utf-8")

    assert links.main(["--check"], root=copy) == 1
    err = capsys.readouterr().err
    assert BROKEN[how] in err and "links OWNER/NAME" in err and err.count("\n") == 1, err

    assert links.main(["someone/x"], root=copy) == 0, capsys.readouterr().err
    assert links.read_home(copy) == ("someone/x", "main")  # the branch the links carried
    assert not links.disagreements(copy)
    assert links.main(["--check"], root=copy) == 0
    repaired = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    assert {k: v for k, v in repaired.items() if k != "tool"} == {
        k: v for k, v in tomllib.loads(original).items() if k != "tool"}
    assert {k: v for k, v in repaired["tool"].items() if k != "course"} == {
        k: v for k, v in tomllib.loads(original)["tool"].items() if k != "course"}


def test_course_py_links_check_names_a_broken_table_without_a_traceback(tmp_path):
    copy = repository_copy(tmp_path)
    pyproject = copy / "pyproject.toml"
    pyproject.write_text(break_course_table(pyproject.read_text(encoding="utf-8"), "not TOML"), encoding="utf-8")
    result = run_links(copy, "--check")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("links --check: pyproject.toml is not valid TOML"), result.stderr


def test_links_keeps_a_comment_after_the_value_and_refuses_what_it_cannot_repair():
    text = '[project]\nname = "x"\n\n[tool.course]\nrepository = "a/b"  # the home\nbranch = "main"\n'
    assert links.with_home(text, "c/d", "dev") == (
        '[project]\nname = "x"\n\n[tool.course]\nrepository = "c/d"  # the home\nbranch = "dev"\n')
    with pytest.raises(ValueError, match="by hand"):
        links.with_home('[tool.course]\nrepository = """a\nb"""\nbranch = "main"\n', "c/d", "main")
    with pytest.raises(ValueError, match="by hand"):
        links.with_home('[tool]\ncourse = { repository = "a/b" }\n', "c/d", "main")
