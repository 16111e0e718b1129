"""The course's links to its home (Binder, Colab, GitHub, the Colab cell's install), from one place.

The repository's public address is written once, in pyproject.toml:

    [tool.course]
    repository = "OWNER/cnn-from-scratch"   # GitHub owner/name; OWNER is a placeholder
    branch = "main"

Every such link in README.md, notebooks/README.md, CONTRIBUTING.md, CITATION.cff and every
notebook under notebooks/ is built from it:

- Binder: https://mybinder.org/v2/gh/<owner>/<name>/<branch>?urlpath=lab/tree/notebooks/<path>
- Colab:  https://colab.research.google.com/github/<owner>/<name>/blob/<branch>/notebooks/<path>
- the Colab cell's install: git+https://github.com/<owner>/<name>@<branch>
- GitHub: https://github.com/<owner>/<name>[/issues ...] (the issues, CITATION.cff's repository-code)

`set_home` (run by ``python3 course.py links OWNER/NAME [--branch BRANCH]``) writes a new
address into pyproject.toml and rewrites the owner, name and branch of every such link to
match, whatever address the links carry now (so it also repairs a hand-broken [tool.course]).
A line holding the placeholder notice marker (`NOTICE`, an HTML comment) says that the links
lead nowhere yet; `set_home` removes those lines, as a real address makes them untrue.
The tests (tests/course/test_links.py) fail when any link disagrees with pyproject.toml.
tools/exercises.py builds the exercise editions' badges with `badges`.

Standard library only: course.py runs it before the course's environment exists.

    python3 tools/links.py [--check] | OWNER/NAME [--branch BRANCH]
"""

import collections
import json
import os
import re
import stat
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"
PLACEHOLDER = "OWNER"
# Ends each line that is true only while the owner is the placeholder (in markdown, and in a
# notebook's markdown cell, an HTML comment shows nowhere).
NOTICE = "<!-- placeholder notice: removed by course.py links -->"

# GitHub's rules: an owner is 1-39 letters, digits or single hyphens, not at either end; a
# repository name is 1-100 letters, digits, '.', '-' or '_', but not '.' or '..'.
OWNER = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}")
NAME = re.compile(r"[A-Za-z0-9._-]{1,100}")
# A branch as these links can carry it: git's rules, without '/' (Binder's and Colab's links
# would then be ambiguous about where the branch ends).
BRANCH = re.compile(r"(?!-)(?!\.)(?!.*\.\.)(?!.*\.lock$)(?!.*\.$)[A-Za-z0-9._-]{1,100}")
GITHUB_URL = re.compile(r"(?:https?://)?(?:www\.)?github\.com[/:]([^/\s]+)/([^/\s]+?)(?:\.git)?/?|"
                        r"git@github\.com:([^/\s]+)/([^/\s]+?)(?:\.git)?")

# What a link may hold in each part (used to find links, whatever address they carry now).
_PART = r"[A-Za-z0-9._-]+"
PATTERNS = {
    "binder": re.compile(rf"https://mybinder\.org/v2/gh/(?P<owner>{_PART})/(?P<name>{_PART})/(?P<branch>{_PART})"
                         rf"(?P<tail>\?urlpath=lab/tree/[A-Za-z0-9._/%-]*)?"),
    "colab": re.compile(rf"https://colab\.research\.google\.com/github/(?P<owner>{_PART})/(?P<name>{_PART})"
                        rf"/blob/(?P<branch>{_PART})(?P<tail>/[A-Za-z0-9._/%-]*)"),
    "pip": re.compile(rf"git\+https://github\.com/(?P<owner>{_PART})/(?P<name>{_PART})@(?P<branch>{_PART})"),
    # The repository's page and what lies under it (/issues); not pip's git+ address, and the
    # name without a clone address's .git, which stays as it is.
    "github": re.compile(rf"(?<!git\+)https://github\.com/(?P<owner>{_PART})/(?P<name>{_PART}?)(?:\.git)?"
                         rf"(?![A-Za-z0-9._@-])(?P<tail>/[A-Za-z0-9._/%-]*)?"),
}
# The files whose links `set_home` rewrites (besides pyproject.toml and the notebooks).
TEXT_FILES = ("README.md", "notebooks/README.md", "CONTRIBUTING.md", "CITATION.cff")

BINDER_BADGE = "https://mybinder.org/badge_logo.svg"
COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
# The badge line of a notebook's title cell, as `badges` writes it.
BADGE_LINE = re.compile(r"^\[!\[Binder\]\(" + re.escape(BINDER_BADGE) + r"\)\]\([^)\s]+\) "
                        r"\[!\[Open In Colab\]\(" + re.escape(COLAB_BADGE) + r"\)\]\([^)\s]+\)$", re.M)

# [tool.course] in pyproject.toml, found line by line so that a broken value can be replaced.
COURSE_HEADER = re.compile(r"^[ \t]*\[[ \t]*tool[ \t]*\.[ \t]*course[ \t]*\][ \t]*(?:#.*)?$", re.M)
TABLE_HEADER = re.compile(r"^[ \t]*\[", re.M)


class WriteError(OSError):
    """A file could not be written; the message says which, and what was written before it."""


# ---------------------------------------------------------------------------------------
# The address

def validate(repository, branch="main", allow_placeholder=False):
    """Raise ValueError, saying what is wrong, unless `repository` is OWNER/NAME and `branch` a plain branch name.

    The placeholder owner (`PLACEHOLDER`) is refused unless `allow_placeholder`: it is what
    the course carries before it has a home, never an address to point it at.
    """
    if not isinstance(repository, str):
        raise TypeError(f"the repository must be a string OWNER/NAME, not {type(repository).__name__}")
    if url := GITHUB_URL.fullmatch(repository):
        owner, name = (url[1], url[2]) if url[1] else (url[3], url[4])
        raise ValueError(f"{repository!r} is a URL: give the repository as OWNER/NAME, here {owner}/{name}")
    owner, slash, name = repository.partition("/")
    if not slash or "/" in name:
        raise ValueError(f"{repository!r} is not of the form OWNER/NAME (a GitHub user or organisation, a slash, "
                         "the repository's name), e.g. someone/cnn-from-scratch")
    if owner == PLACEHOLDER and not allow_placeholder:
        raise ValueError(f"{PLACEHOLDER!r} is the placeholder the course carries until it has a home, not a GitHub "
                         f"owner: give your GitHub user or organisation, e.g. someone/{name}")
    if not OWNER.fullmatch(owner):
        raise ValueError(f"{owner!r} is not a GitHub owner: 1 to 39 letters, digits or single hyphens, "
                         "not starting or ending with a hyphen")
    if not NAME.fullmatch(name) or name in (".", ".."):
        raise ValueError(f"{name!r} is not a GitHub repository name: 1 to 100 letters, digits, '.', '-' or '_'")
    if name.lower().endswith(".git"):
        raise ValueError(f"{name!r} ends in .git, which belongs to the clone address, not to the repository's "
                         f"name: give {owner}/{name[:-4]}")
    if not isinstance(branch, str):
        raise TypeError(f"the branch must be a string, not {type(branch).__name__}")
    if not BRANCH.fullmatch(branch):
        raise ValueError(f"{branch!r} is not a branch name these links can carry: letters, digits, '.', '-' "
                         "or '_' (no '/'), not starting with '-' or '.', without '..'")


def read_home(root=ROOT):
    """(repository, branch) from [tool.course] in `root`/pyproject.toml, e.g. ("OWNER/cnn-from-scratch", "main").

    Raises ValueError, saying what is wrong and how to repair it, when pyproject.toml is not
    valid TOML or its [tool.course] lacks a valid repository or branch.
    """
    repair = "`python3 course.py links OWNER/NAME` writes it anew"
    try:
        with open(Path(root) / "pyproject.toml", "rb") as f:
            config = tomllib.load(f)
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"pyproject.toml is not valid TOML ({error}); {repair}") from None
    course = config.get("tool", {}).get("course")
    if not isinstance(course, dict):
        raise ValueError(f"pyproject.toml has no [tool.course] table (repository = \"OWNER/NAME\", "
                         f"branch = \"BRANCH\"); {repair}")
    for key, example in (("repository", "OWNER/NAME"), ("branch", "main")):
        if key not in course:
            raise ValueError(f"pyproject.toml's [tool.course] has no {key} (e.g. {key} = \"{example}\"); {repair}")
        if not isinstance(course[key], str):
            raise ValueError(f"pyproject.toml's [tool.course] {key} must be a string like \"{example}\", "
                             f"not {course[key]!r}; {repair}")
    try:
        validate(course["repository"], course["branch"], allow_placeholder=True)
    except ValueError as error:
        raise ValueError(f"pyproject.toml's [tool.course]: {error}; {repair}") from None
    return course["repository"], course["branch"]


def binder_url(repository, branch, path):
    """Binder's link opening notebooks/`path` in JupyterLab ('' opens the notebooks folder)."""
    return f"https://mybinder.org/v2/gh/{repository}/{branch}?urlpath=lab/tree/notebooks/{path}"


def colab_url(repository, branch, path):
    """Colab's link opening notebooks/`path` from GitHub."""
    return f"https://colab.research.google.com/github/{repository}/blob/{branch}/notebooks/{path}"


def pip_url(repository, branch):
    """What pip installs the course package from (the Colab cell)."""
    return f"git+https://github.com/{repository}@{branch}"


def repository_url(repository):
    """The repository's page on GitHub (CITATION.cff's repository-code)."""
    return f"https://github.com/{repository}"


def issues_url(repository):
    """Where to report a problem: the repository's GitHub issues."""
    return f"{repository_url(repository)}/issues"


def badges(path, repository=None, branch=None):
    """The badge line of the title cell of notebooks/`path` (e.g. "exercises/02-dense.ipynb")."""
    if repository is None or branch is None:
        repository, branch = read_home()
    return (f"[![Binder]({BINDER_BADGE})]({binder_url(repository, branch, path)}) "
            f"[![Open In Colab]({COLAB_BADGE})]({colab_url(repository, branch, path)})")


# ---------------------------------------------------------------------------------------
# Finding and rewriting links

def find_links(text):
    """Every link to the course's home in `text`: a list of (kind, "owner/name", branch, tail, the whole link).

    A GitHub link carries no branch: its branch is None.
    """
    found = []
    for kind, pattern in PATTERNS.items():
        for m in pattern.finditer(text):
            groups = m.groupdict()
            found.append((kind, f"{m['owner']}/{m['name']}", groups.get("branch"), groups.get("tail") or "", m[0]))
    return found


def rewrite(text, repository, branch):
    """`text` with the owner, name and branch of every link to the course's home replaced."""
    owner, name = repository.split("/")
    values = {"owner": owner, "name": name, "branch": branch}

    def replace(m):
        link = m[0]
        start = m.start()
        # Replace the groups from the right, so the earlier offsets stay valid.
        for group in ("branch", "name", "owner"):
            if group in m.re.groupindex:
                a, b = m.start(group) - start, m.end(group) - start
                link = link[:a] + values[group] + link[b:]
        return link

    for pattern in PATTERNS.values():
        text = pattern.sub(replace, text)
    return text


def drop_notices(text):
    """`text` without its placeholder notice lines, and without the blank line that set one apart."""
    out, dropped = [], False
    for line in text.splitlines(keepends=True):
        if NOTICE in line:
            dropped = True
            continue
        if dropped and not line.strip() and (not out or not out[-1].strip()):
            dropped = False
            continue
        dropped = False
        out.append(line)
    result = "".join(out)
    return result if text.endswith("\n") else result.rstrip("\n")


def drop_notebook_notices(text):
    """A notebook's JSON text without the placeholder notice lines of its markdown cells.

    Written back as Jupyter writes notebooks (as tools/exercises.py does), which is how they
    are committed; a notebook without a notice is left as it is.
    """
    if NOTICE not in text:
        return text
    nb = json.loads(text)
    for cell in nb.get("cells", []):
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else source
        if cell.get("cell_type") == "markdown" and NOTICE in source:
            cell["source"] = drop_notices(source).splitlines(keepends=True)
    return json.dumps(nb, sort_keys=True, indent=1, ensure_ascii=False) + "\n"


def new_content(path, text, repository, branch):
    """What `set_home` makes of a file (`path`, holding `text`) for the address `repository`, `branch`."""
    text = rewrite(text, repository, branch)
    return drop_notebook_notices(text) if Path(path).suffix == ".ipynb" else drop_notices(text)


def notebook_files(root=ROOT):
    return sorted((Path(root) / "notebooks").rglob("*.ipynb"))


def files_with_links(root=ROOT):
    """Every file whose links follow pyproject.toml: the READMEs, CONTRIBUTING.md, CITATION.cff, every notebook."""
    root = Path(root)
    return [root / name for name in TEXT_FILES if (root / name).exists()] + [
        p for p in notebook_files(root) if ".ipynb_checkpoints" not in p.parts]


# ---------------------------------------------------------------------------------------
# Writing the address

def with_home(text, repository, branch):
    """pyproject.toml's `text` with [tool.course] holding `repository` and `branch`.

    Works line by line, so it also repairs a table whose values are missing, of the wrong
    type or not even valid TOML; the table is added at the end if there is none. Raises
    ValueError when the result is not valid TOML with exactly those values.
    """
    header = COURSE_HEADER.search(text)
    if header is None:
        text = text + ("" if text.endswith("\n") or not text else "\n")
        new = text + f'\n[tool.course]\nrepository = "{repository}"\nbranch = "{branch}"\n'
    else:
        following = TABLE_HEADER.search(text, header.end())
        end = following.start() if following else len(text)
        body = text[header.end():end]
        for key, value in (("repository", repository), ("branch", branch)):
            line = re.search(rf"^[ \t]*{key}[ \t]*=.*$", body, re.M)
            if line is None:
                body = f'\n{key} = "{value}"' + body
                continue
            # A quoted value is replaced alone (a comment after it stays); anything else, the whole line.
            quoted = re.match(rf'([ \t]*{key}[ \t]*=[ \t]*)"[^"\n]*"', line[0])
            replacement = quoted[1] + f'"{value}"' + line[0][quoted.end():] if quoted else f'{key} = "{value}"'
            body = body[:line.start()] + replacement + body[line.end():]
        new = text[:header.end()] + body + text[end:]
    try:
        course = tomllib.loads(new).get("tool", {}).get("course", {})
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"pyproject.toml would not be valid TOML ({error}); set [tool.course] repository = "
                         f"\"{repository}\" and branch = \"{branch}\" in it by hand") from None
    if (course.get("repository"), course.get("branch")) != (repository, branch):
        raise ValueError(f"could not write [tool.course] into pyproject.toml; set repository = \"{repository}\" "
                         f"and branch = \"{branch}\" in it by hand")
    return new


def current_branch(root=ROOT):
    """The branch to keep when none is given: pyproject.toml's, else the one most links carry, else "main".

    Returns (branch, where it came from).
    """
    try:
        return read_home(root)[1], "pyproject.toml"
    except (ValueError, OSError):
        pass
    try:
        text = (Path(root) / "pyproject.toml").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        text = ""
    header = COURSE_HEADER.search(text)
    if header:
        following = TABLE_HEADER.search(text, header.end())
        body = text[header.end():following.start() if following else len(text)]
        if (m := re.search(r'^[ \t]*branch[ \t]*=[ \t]*"([^"\n]*)"', body, re.M)) and BRANCH.fullmatch(m[1]):
            return m[1], "pyproject.toml"
    counts = collections.Counter(
        branch for path in files_with_links(root)
        for _, _, branch, _, _ in find_links(path.read_text(encoding="utf-8")) if branch and BRANCH.fullmatch(branch))
    if counts:
        return counts.most_common(1)[0][0], "the current links"
    return "main", "the default"


def _temporary_copy(path, data):
    """Write `data` into a new file beside `path` (same folder, so os.replace is atomic); return its name."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp makes the file private (0600); the file it replaces keeps its permissions.
        os.chmod(temporary, stat.S_IMODE(path.stat().st_mode))
    except BaseException:
        os.unlink(temporary)
        raise
    return temporary


def write_all(contents, written=None):
    """Replace each file in `contents` ({path: bytes}, in order) by its new bytes, each atomically.

    Every new file is written first beside the one it replaces; only then are they moved
    into place one by one, in order (so pyproject.toml goes last when it is last). However
    this is interrupted, each file is either its old self or its new self, never cut short,
    and no temporary file is left behind. `written` (a list) receives each path once it is
    in place. Raises WriteError naming the file that could not be written.
    """
    written = [] if written is None else written
    temporaries = {}
    try:
        for path in contents:
            if not os.access(path.parent, os.W_OK) or not os.access(path, os.W_OK):
                raise WriteError(f"cannot write {path} (a read-only folder or file); nothing was changed")
        for path, data in contents.items():
            try:
                temporaries[path] = _temporary_copy(path, data)
            except OSError as error:
                raise WriteError(f"cannot write beside {path}: {error.strerror or error}; nothing was changed") \
                    from None
        for path in contents:
            try:
                os.replace(temporaries[path], path)
            except OSError as error:
                done = ", ".join(p.name for p in written) or "none"
                raise WriteError(f"cannot replace {path}: {error.strerror or error}; {len(written)} of "
                                 f"{len(contents)} files were rewritten before it ({done})") from None
            del temporaries[path]
            written.append(path)
    finally:
        for temporary in temporaries.values():
            try:
                os.unlink(temporary)
            except OSError:
                pass
    return written


def plan_home(repository, branch="main", root=ROOT):
    """{path: new bytes} of every file `set_home` changes, pyproject.toml last. Writes nothing.

    Raises ValueError for a bad address, or when a file could not be rewritten as it should
    (a notebook that would no longer be JSON, a pyproject.toml that would not be valid TOML).
    """
    validate(repository, branch)
    root = Path(root)
    contents = {}
    for path in files_with_links(root):
        old = path.read_bytes()
        new = new_content(path, old.decode("utf-8"), repository, branch).encode("utf-8")
        if path.suffix == ".ipynb":
            try:
                json.loads(new)
            except ValueError as error:
                raise ValueError(f"{path.relative_to(root)} would not be a notebook after the rewrite ({error}); "
                                 "nothing was changed") from None
        if new != old:
            contents[path] = new
    pyproject = root / "pyproject.toml"
    old = pyproject.read_bytes()
    new = drop_notices(with_home(old.decode("utf-8"), repository, branch)).encode("utf-8")
    if new != old:
        contents[pyproject] = new
    return contents


def set_home(repository, branch="main", root=ROOT, written=None):
    """Write `repository` and `branch` into [tool.course] and every link under `root`.

    Returns the files changed (paths). Raises ValueError for a bad address, before writing
    anything; WriteError when a file cannot be written (see `write_all`): pyproject.toml,
    written last, then still holds the old address, and running again completes the change.
    """
    return write_all(plan_home(repository, branch, root), written)


def disagreements(root=ROOT):
    """Every link under `root` that does not match pyproject.toml, as "file: link" strings.

    Also a placeholder notice left in a file once the course has a real home. Raises
    ValueError when pyproject.toml's [tool.course] is broken (see `read_home`).
    """
    repository, branch = read_home(root)
    published = repository.split("/")[0] != PLACEHOLDER
    wrong = []
    for path in files_with_links(root):
        text = path.read_text(encoding="utf-8")
        for kind, repo, link_branch, tail, link in find_links(text):
            if repo != repository or link_branch not in (None, branch):
                wrong.append(f"{Path(path).relative_to(root)}: {link}")
        if published and NOTICE in text:
            wrong.append(f"{Path(path).relative_to(root)}: a placeholder notice, but the course's home is {repository}")
    return wrong


# ---------------------------------------------------------------------------------------
# The command

HELP = """usage: {prog} OWNER/NAME [--branch BRANCH]
       {prog} --check

Write the course's GitHub address (OWNER/NAME, e.g. someone/cnn-from-scratch) into
pyproject.toml's [tool.course] and rewrite every link built from it: the Binder and Colab
badges and links (READMEs, start page, lessons, exercise editions), the Colab cell's install,
the GitHub and issues links and CITATION.cff's repository-code. Run it once after forking.
The branch stays as it is unless --branch BRANCH is given. Each file is replaced whole (never
left half-written), pyproject.toml last. A broken [tool.course] is repaired.

--check  change nothing; list every link that disagrees with pyproject.toml (exit 1 if any)."""


def main(argv, root=ROOT, prog="python3 tools/links.py"):
    """`OWNER/NAME [--branch BRANCH]`: set the address; `--check`: exit 1 if a link disagrees."""
    usage = HELP.split("\n\n")[0].format(prog=prog)
    if "-h" in argv or "--help" in argv:
        print(HELP.format(prog=prog))
        return 0
    if argv == ["--check"]:
        try:
            wrong = disagreements(root)
        except (ValueError, OSError) as error:
            print(f"links --check: {error}", file=sys.stderr)
            return 1
        for line in wrong:
            print(line)
        return 1 if wrong else 0
    args = list(argv)
    branch = None
    if "--branch" in args:
        k = args.index("--branch")
        if k + 1 >= len(args) or args[k + 1].startswith("-"):
            print("links: --branch needs a branch name, e.g. --branch main", file=sys.stderr)
            return 2
        branch = args[k + 1]
        del args[k:k + 2]
    if unknown := [a for a in args if a.startswith("-")]:
        print(f"links: unknown option {unknown[0]!r}\n{usage}", file=sys.stderr)
        return 2
    if len(args) != 1:
        problem = f"unexpected argument {args[1]!r}" if args else "give the course's address, OWNER/NAME"
        print(f"links: {problem}\n{usage}", file=sys.stderr)
        return 2
    repository = args[0]
    kept = ""
    if branch is None:
        branch, source = current_branch(root)
        if source != "pyproject.toml":
            kept = f" (taken from {source}, as pyproject.toml had none)"
    written = []
    try:
        set_home(repository, branch, root, written)
    except (ValueError, TypeError) as error:
        print(f"links: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"links: {error}. Run the same command again once that is fixed: it completes the change.",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"links: interrupted after rewriting {len(written)} file(s); each file is whole, old or new, and "
              "pyproject.toml is rewritten last. Run the same command again to complete the change.",
              file=sys.stderr)
        return 130
    print(f"Links now point at {repository}, branch {branch}{kept}: {len(written)} file(s) changed.")
    for path in written:
        print(f"  {Path(path).relative_to(root)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
