"""The course's launch links (Binder, Colab, and the Colab cell's pip install), from one place.

The repository's public address is written once, in pyproject.toml:

    [tool.course]
    repository = "OWNER/cnn-from-scratch"   # GitHub owner/name; OWNER is a placeholder
    branch = "main"

Every launch link in README.md, notebooks/README.md and every notebook under notebooks/ is
built from it:

- Binder: https://mybinder.org/v2/gh/<owner>/<name>/<branch>?urlpath=lab/tree/notebooks/<path>
- Colab:  https://colab.research.google.com/github/<owner>/<name>/blob/<branch>/notebooks/<path>
- the Colab cell's install: git+https://github.com/<owner>/<name>@<branch>

`set_home` (run by ``python3 course.py links OWNER/NAME [--branch BRANCH]``) writes a new
address into pyproject.toml and rewrites the owner, name and branch of every such link to
match; the tests (tests/test_links.py) fail when any link disagrees with pyproject.toml.
tools/exercises.py builds the exercise editions' badges with `badges`.

Standard library only: course.py runs it before the course's environment exists.

    python3 tools/links.py [--check] | OWNER/NAME [--branch BRANCH]
"""

import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"
PLACEHOLDER = "OWNER"

# GitHub's rules: an owner is 1-39 letters, digits or single hyphens, not at either end; a
# repository name is 1-100 letters, digits, '.', '-' or '_', but not '.' or '..'.
OWNER = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}")
NAME = re.compile(r"[A-Za-z0-9._-]{1,100}")
# A branch as these links can carry it: git's rules, without '/' (Binder's and Colab's links
# would then be ambiguous about where the branch ends).
BRANCH = re.compile(r"(?!-)(?!\.)(?!.*\.\.)(?!.*\.lock$)(?!.*\.$)[A-Za-z0-9._-]{1,100}")

# What a link may hold in each part (used to find links, whatever address they carry now).
_PART = r"[A-Za-z0-9._-]+"
PATTERNS = {
    "binder": re.compile(rf"https://mybinder\.org/v2/gh/(?P<owner>{_PART})/(?P<name>{_PART})/(?P<branch>{_PART})"
                         rf"(?P<tail>\?urlpath=lab/tree/[A-Za-z0-9._/%-]*)?"),
    "colab": re.compile(rf"https://colab\.research\.google\.com/github/(?P<owner>{_PART})/(?P<name>{_PART})"
                        rf"/blob/(?P<branch>{_PART})(?P<tail>/[A-Za-z0-9._/%-]*)"),
    "pip": re.compile(rf"git\+https://github\.com/(?P<owner>{_PART})/(?P<name>{_PART})@(?P<branch>{_PART})"),
}
# The files whose launch links `set_home` rewrites (besides pyproject.toml).
TEXT_FILES = ("README.md", "notebooks/README.md")

BINDER_BADGE = "https://mybinder.org/badge_logo.svg"
COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
# The badge line of a notebook's title cell, as `badges` writes it.
BADGE_LINE = re.compile(r"^\[!\[Binder\]\(" + re.escape(BINDER_BADGE) + r"\)\]\([^)\s]+\) "
                        r"\[!\[Open In Colab\]\(" + re.escape(COLAB_BADGE) + r"\)\]\([^)\s]+\)$", re.M)


def read_home(root=ROOT):
    """(repository, branch) from [tool.course] in `root`/pyproject.toml, e.g. ("OWNER/cnn-from-scratch", "main")."""
    with open(Path(root) / "pyproject.toml", "rb") as f:
        course = tomllib.load(f).get("tool", {}).get("course", {})
    repository, branch = course.get("repository"), course.get("branch")
    if not isinstance(repository, str) or not isinstance(branch, str):
        raise ValueError("pyproject.toml needs [tool.course] with repository = \"OWNER/NAME\" and branch = \"BRANCH\"")
    validate(repository, branch)
    return repository, branch


def validate(repository, branch="main"):
    """Raise ValueError, saying what is wrong, unless `repository` is OWNER/NAME and `branch` a plain branch name."""
    owner, slash, name = repository.partition("/")
    if not slash or "/" in name:
        raise ValueError(f"{repository!r} is not of the form OWNER/NAME (a GitHub user or organisation, a slash, "
                         "the repository's name), e.g. someone/cnn-from-scratch")
    if not OWNER.fullmatch(owner):
        raise ValueError(f"{owner!r} is not a GitHub owner: 1 to 39 letters, digits or single hyphens, "
                         "not starting or ending with a hyphen")
    if not NAME.fullmatch(name) or name in (".", ".."):
        raise ValueError(f"{name!r} is not a GitHub repository name: 1 to 100 letters, digits, '.', '-' or '_'")
    if not BRANCH.fullmatch(branch):
        raise ValueError(f"{branch!r} is not a branch name these links can carry: letters, digits, '.', '-' "
                         "or '_' (no '/'), not starting with '-' or '.', without '..'")


def binder_url(repository, branch, path):
    """Binder's link opening notebooks/`path` in JupyterLab ('' opens the notebooks folder)."""
    return f"https://mybinder.org/v2/gh/{repository}/{branch}?urlpath=lab/tree/notebooks/{path}"


def colab_url(repository, branch, path):
    """Colab's link opening notebooks/`path` from GitHub."""
    return f"https://colab.research.google.com/github/{repository}/blob/{branch}/notebooks/{path}"


def pip_url(repository, branch):
    """What pip installs the course package from (the Colab cell)."""
    return f"git+https://github.com/{repository}@{branch}"


def badges(path, repository=None, branch=None):
    """The badge line of the title cell of notebooks/`path` (e.g. "exercises/02-dense.ipynb")."""
    if repository is None or branch is None:
        repository, branch = read_home()
    return (f"[![Binder]({BINDER_BADGE})]({binder_url(repository, branch, path)}) "
            f"[![Open In Colab]({COLAB_BADGE})]({colab_url(repository, branch, path)})")


def find_links(text):
    """Every launch link in `text`: a list of (kind, "owner/name", branch, tail, the whole link)."""
    found = []
    for kind, pattern in PATTERNS.items():
        for m in pattern.finditer(text):
            found.append((kind, f"{m['owner']}/{m['name']}", m["branch"], m.groupdict().get("tail") or "", m[0]))
    return found


def rewrite(text, repository, branch):
    """`text` with the owner, name and branch of every launch link replaced."""
    owner, name = repository.split("/")

    def replace(m):
        link = m[0]
        start = m.start()
        # Replace the three groups from the right, so the earlier offsets stay valid.
        for group, value in (("branch", branch), ("name", name), ("owner", owner)):
            a, b = m.start(group) - start, m.end(group) - start
            link = link[:a] + value + link[b:]
        return link

    for pattern in PATTERNS.values():
        text = pattern.sub(replace, text)
    return text


def notebook_files(root=ROOT):
    return sorted((Path(root) / "notebooks").rglob("*.ipynb"))


def files_with_links(root=ROOT):
    """Every file whose launch links follow pyproject.toml: the two READMEs and every notebook."""
    root = Path(root)
    return [root / name for name in TEXT_FILES if (root / name).exists()] + [
        p for p in notebook_files(root) if ".ipynb_checkpoints" not in p.parts]


def set_home(repository, branch="main", root=ROOT):
    """Write `repository` and `branch` into [tool.course] and every launch link under `root`.

    Returns the files changed (paths). Raises ValueError for a bad address, before
    writing anything.
    """
    validate(repository, branch)
    root = Path(root)
    pyproject = root / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    section = re.search(r"^\[tool\.course\]\n(?:(?!\[).*\n?)*", text, re.M)
    if not section:
        raise ValueError(f"{pyproject} has no [tool.course] table")
    body = section[0]
    for key, value in (("repository", repository), ("branch", branch)):
        body, n = re.subn(rf'^{key}\s*=\s*"[^"\n]*"', f'{key} = "{value}"', body, count=1, flags=re.M)
        if n != 1:
            raise ValueError(f"{pyproject}'s [tool.course] has no line {key} = \"...\"")
    changed = []
    new = text[:section.start()] + body + text[section.end():]
    if new != text:
        pyproject.write_text(new, encoding="utf-8")
        changed.append(pyproject)
    for path in files_with_links(root):
        old = path.read_text(encoding="utf-8")
        new = rewrite(old, repository, branch)
        if new != old:
            path.write_text(new, encoding="utf-8")
            changed.append(path)
    return changed


def disagreements(root=ROOT):
    """Every launch link under `root` that does not match pyproject.toml, as "file: link" strings."""
    repository, branch = read_home(root)
    wrong = []
    for path in files_with_links(root):
        for kind, repo, link_branch, tail, link in find_links(path.read_text(encoding="utf-8")):
            if (repo, link_branch) != (repository, branch):
                wrong.append(f"{Path(path).relative_to(root)}: {link}")
    return wrong


def main(argv, root=ROOT):
    """`OWNER/NAME [--branch BRANCH]`: set the address; `--check`: exit 1 if a link disagrees."""
    if argv == ["--check"]:
        wrong = disagreements(root)
        for line in wrong:
            print(line)
        return 1 if wrong else 0
    args = list(argv)
    branch = None
    if "--branch" in args:
        k = args.index("--branch")
        if k + 1 >= len(args):
            print("--branch needs a branch name, e.g. --branch main", file=sys.stderr)
            return 2
        branch = args[k + 1]
        del args[k:k + 2]
    if len(args) != 1 or args[0].startswith("-"):
        print("usage: links OWNER/NAME [--branch BRANCH]   (e.g. links someone/cnn-from-scratch)", file=sys.stderr)
        return 2
    if branch is None:
        branch = read_home(root)[1]
    try:
        changed = set_home(args[0], branch, root)
    except ValueError as error:
        print(f"links: {error}", file=sys.stderr)
        return 2
    print(f"Launch links now point at {args[0]}, branch {branch}: {len(changed)} file(s) changed.")
    for path in changed:
        print(f"  {Path(path).relative_to(root)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
