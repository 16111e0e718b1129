#!/usr/bin/env python3
"""Set up the course and run it.

    python3 course.py lab      set the course up, then open JupyterLab on the start page
    python3 course.py test     set it up with the test tools, then run every test (extra args go to pytest)
    python3 course.py setup    only set the course up (--tests: with the test tools too)
    python3 course.py execute  re-run notebooks in place and store their outputs (for authors)
    python3 course.py exercises  regenerate the lessons' exercise editions and execute them (for authors)
    python3 course.py download   fetch MNIST ahead of time, e.g. into a class's shared CNNLIB_DATA_DIR
    python3 course.py links OWNER/NAME [--branch BRANCH]   point every link to the course's home at a fork

`python3 course.py COMMAND --help` says what COMMAND does and takes, and installs nothing.
On Windows, write `py course.py ...` instead of `python3 course.py ...`.

"Set up" means: create a virtual environment in .venv (if there is none yet) and install
the course into it with `pip install -c constraints.txt -e ".[lab]"`: the course package,
its runtime dependencies and JupyterLab, all a learner needs, at the versions the course is
tested with (constraints.txt; pyproject.toml only says which versions are supported). The
test tools (pytest, pytest-xdist, hypothesis, nbval and Playwright) are added with
`pip install -c constraints.txt -e ".[lab,test,browser]"` the first time `test` runs (or by
`setup --tests`). Each pip step is skipped when it already ran for the current pyproject.toml
and constraints.txt (a stamp file in .venv for each holds their hash).
This script uses the standard library only.
"""

import hashlib
import os
import shutil
import signal
import subprocess
import sys

MIN_PYTHON = (3, 11)

if sys.version_info < MIN_PYTHON:
    sys.exit(
        "This course needs Python %d.%d or newer; this is Python %d.%d (%s).\n"
        "Install a newer Python from https://www.python.org/downloads/ and run this script with it."
        % (MIN_PYTHON + sys.version_info[:2] + (sys.executable,))
    )

ROOT = os.path.dirname(os.path.abspath(__file__))
VENV = os.path.join(ROOT, ".venv")
STAMP = os.path.join(VENV, "course-installed.txt")
TARGET = ".[lab]"  # the course, its runtime dependencies and JupyterLab: what the lessons need
TEST_STAMP = os.path.join(VENV, "course-test-tools.txt")
TEST_TARGET = ".[lab,test,browser]"  # and the test tools, Playwright for the browser test among them
# The tested stack, exact versions: pip picks them within pyproject.toml's supported ranges, so
# every learner gets the versions the committed outputs were made with. Relative, as pip runs in ROOT.
CONSTRAINTS = "constraints.txt"
# What an install depends on: a change to either file installs again.
INSTALL_INPUTS = ("pyproject.toml", CONSTRAINTS)
START_PAGE = os.path.join("notebooks", "00-start-here.ipynb")

# What each command does and takes, printed by `python3 course.py COMMAND --help` (`links`
# prints its own, from tools/links.py).
HELP = {
    "lab": """usage: python3 course.py lab

Set the course up (the first time: .venv, then pip install -c constraints.txt -e ".[lab]",
a few minutes), then open JupyterLab on the start page, notebooks/00-start-here.ipynb, with
the file browser on notebooks/. Press Ctrl+C in this window to stop JupyterLab.""",
    "test": """usage: python3 course.py test [pytest arguments...]

Set the course up with the test tools (the first time: pip install -c constraints.txt
-e ".[lab,test,browser]"), then run the unit tests, each lesson in a browser (JupyterLab +
Chromium) and every notebook (nbval), in two worker processes:
    pytest -n 2 --dist loadscope --no-loadscope-reorder tests notebooks --nbval [pytest arguments...]
The arguments go to pytest, e.g. `-k conv -x`, `-m "not browser"` (leave out the browser
test), or `-n 0` to run everything in one process (as --pdb and -s need). pytest's own
options: .venv/bin/python -m pytest --help.""",
    "setup": """usage: python3 course.py setup [--tests]

Only set the course up: create .venv if there is none, then pip install -c constraints.txt
-e ".[lab]" (the course, its dependencies and JupyterLab). --tests adds the test tools, as
`test` does (".[lab,test,browser]"). Each step is skipped when it already ran for the
current pyproject.toml and constraints.txt.""",
    "execute": """usage: python3 course.py execute [notebooks...]

For authors: run the given notebooks (default: every notebook in notebooks/) top to bottom
in a fresh kernel and save them with their outputs, as nbval expects them to be committed.""",
    "exercises": """usage: python3 course.py exercises [--force] [lessons...]

For authors: regenerate the exercise editions (notebooks/exercises/) of the given lessons
(notebooks/NN-name.ipynb; default: all) from their exercise markup, then execute the
editions that changed; --force executes every regenerated edition.""",
    "download": """usage: python3 course.py download

Set the course up, then fetch MNIST's four files (11 MB) with a progress bar into the folder
named by CNNLIB_DATA_DIR (created if missing), or else into the default cache. Give a class
the same CNNLIB_DATA_DIR to share one copy. The lessons themselves need no download.""",
}
COMMANDS = ("lab", "test", "setup", "execute", "exercises", "download", "links")

USAGE = """usage: python3 course.py {lab,test,setup,execute,exercises,download,links} [args...]

  lab        set the course up, then open JupyterLab on the start page
  test       set it up with the test tools (installed the first time), then run the unit
             tests, each lesson in a browser (JupyterLab + Chromium) and every notebook (nbval)
  setup [--tests]
             only set the course up (.venv + pip install -c constraints.txt -e ".[lab]");
             --tests adds the test tools as `test` does (".[lab,test,browser]")
  execute    re-run notebooks in a fresh kernel and save their outputs (for authors)
  exercises [--force] [lessons...]
             regenerate the exercise editions and execute those that changed (for authors)
  download   fetch MNIST (11 MB) ahead of time, e.g. into a class's shared CNNLIB_DATA_DIR
  links OWNER/NAME [--branch BRANCH]
             point every Binder, Colab and GitHub link at the course's home, e.g. after forking

`python3 course.py COMMAND --help` says more about COMMAND, without setting anything up.
"""


def say(message):
    print("[course] " + message, flush=True)


def venv_python():
    if os.name == "nt":
        return os.path.join(VENV, "Scripts", "python.exe")
    return os.path.join(VENV, "bin", "python")


def install_hash():
    """The hash of what an install depends on (pyproject.toml and constraints.txt), for the stamps."""
    digest = hashlib.sha256()
    for name in INSTALL_INPUTS:
        try:
            with open(os.path.join(ROOT, name), "rb") as f:
                data = f.read()
        except FileNotFoundError:
            sys.exit("%s is missing from %s; the set-up needs it (get it back with `git checkout %s`)."
                     % (name, ROOT, name))
        if name == "pyproject.toml":
            data = without_course_table(data)
        digest.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    return digest.hexdigest()


def without_course_table(data):
    """pyproject.toml's bytes less its [tool.course] table: `links` rewrites only that table, and
    the address of the course's home changes nothing pip installs."""
    lines = data.splitlines(keepends=True)
    kept, inside = [], False
    for line in lines:
        stripped = line.strip()
        if stripped.startswith(b"["):
            inside = stripped == b"[tool.course]"
        if not inside:
            kept.append(line)
    return b"".join(kept)


def run(command):
    """Run a command from the repo root and return its exit code.

    Ctrl+C goes to the command (pytest and JupyterLab each handle it their own way)
    instead of killing it from here.
    """
    process = subprocess.Popen(command, cwd=ROOT)
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return process.wait()
    finally:
        signal.signal(signal.SIGINT, previous)


def create_venv():
    say("Creating .venv (a private Python environment for the course) ...")
    import venv

    try:
        venv.EnvBuilder(with_pip=True).create(VENV)
    except (OSError, subprocess.CalledProcessError) as error:
        shutil.rmtree(VENV, ignore_errors=True)
        sys.exit(
            "Could not create .venv: %s\n"
            "On Debian/Ubuntu, install the venv module first (e.g. `sudo apt install python3-venv`),\n"
            "then try again." % error
        )


def installed(stamp, wanted):
    if os.path.exists(stamp):
        with open(stamp) as f:
            return f.read().strip() == wanted
    return False


def pip_install(python, target, stamp, wanted):
    code = run([python, "-m", "pip", "install", "--disable-pip-version-check", "-c", CONSTRAINTS, "-e", target])
    if code != 0:
        sys.exit("pip install failed (exit code %d); see the messages above." % code)
    with open(stamp, "w") as f:
        f.write(wanted + "\n")


def setup(tests=False):
    """Make .venv and install the course (and with `tests`, the test tools); return its Python."""
    wanted = install_hash()
    python = venv_python()
    if not os.path.exists(python):
        if os.path.exists(VENV):
            sys.exit(
                ".venv exists but has no Python at %s.\n"
                "Delete the .venv folder and run this command again." % python
            )
        create_venv()

    if installed(STAMP, wanted):
        say("Course already installed in .venv (pyproject.toml and constraints.txt unchanged).")
    else:
        say("Installing the course, its dependencies and JupyterLab into .venv "
            "(pip install -c %s -e \"%s\") ..." % (CONSTRAINTS, TARGET))
        say("The first time this takes a few minutes (.venv ends up about 630 MB).")
        pip_install(python, TARGET, STAMP, wanted)
        say("Installed.")
    if tests:
        if installed(TEST_STAMP, wanted):
            say("Test tools already installed in .venv.")
        else:
            say("Installing the test tools into .venv (pip install -c %s -e \"%s\"), once ..."
                % (CONSTRAINTS, TEST_TARGET))
            pip_install(python, TEST_TARGET, TEST_STAMP, wanted)
            say("Test tools installed.")
    return python


def lab():
    python = setup()
    say("Opening JupyterLab on the start page, %s (press Ctrl+C twice in this window to stop it) ..."
        % START_PAGE)
    # The file browser starts at the repository's root, so that the lessons' links to ../README.md
    # and ../CONTRIBUTING.md open; Jupyter opens a file given after it in JupyterLab.
    command = [python, "-m", "jupyter", "lab", "--ServerApp.root_dir=" + ROOT, os.path.join(ROOT, START_PAGE)]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")  # e.g. inside a Docker container; Jupyter refuses root otherwise
    return run(command)


# Two pytest-xdist workers, each taking a whole test file, test class or notebook at a time (a
# notebook's cells share one kernel, the browser tests one JupyterLab), in the order pytest
# collects them: tests/conftest.py puts the longest first, so that both workers finish together.
# `python3 course.py test -n 0` runs everything in one process.
PARALLEL = ["-n", "2", "--dist", "loadscope", "--no-loadscope-reorder"]


def test(pytest_args):
    python = setup(tests=True)
    command = [python, "-m", "pytest"] + PARALLEL + ["tests", "notebooks", "--nbval"] + pytest_args
    say("Running the tests in two workers: unit tests, each lesson in a browser, every notebook with nbval ...")
    say(" ".join(["python"] + command[1:]))
    return run(command)


def execute(paths):
    """Run each notebook in a fresh kernel from notebooks/ and save it with its outputs."""
    python = setup()
    if not paths:
        folder = os.path.join(ROOT, "notebooks")
        paths = sorted(os.path.join(folder, n) for n in os.listdir(folder) if n.endswith(".ipynb"))
    for path in paths:
        say("Executing %s ..." % os.path.relpath(path, ROOT))
        code = run([python, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute", "--inplace",
                    "--ExecutePreprocessor.kernel_name=python3", "--ExecutePreprocessor.timeout=600",
                    os.path.abspath(path)])
        if code != 0:
            return code
    return 0


def load_tool(name):
    """tools/<name>.py (standard library only), e.g. the exercise generator or the launch links."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("course_" + name, os.path.join(ROOT, "tools", name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_exercise_tools():
    """tools/exercises.py, the generator of the exercise editions."""
    return load_tool("exercises")


def links(args):
    """Point every link to the course's home at OWNER/NAME (and --branch BRANCH); see tools/links.py."""
    return load_tool("links").main(args, root=ROOT, prog="python3 course.py links")


def exercises(args):
    """Regenerate the exercise editions of the lessons in `args` (default: all), execute them.

    An edition whose cells did not change keeps its stored outputs and is not executed again,
    unless --force is given.
    """
    force = "--force" in args
    paths = [a for a in args if a != "--force"]
    if unknown := [a for a in paths if a.startswith("-")]:
        sys.exit("course.py exercises: unknown option %r; see `python3 course.py exercises --help`." % unknown[0])
    tools = load_exercise_tools()
    try:
        report = tools.write_editions(paths or None)
    except tools.ExerciseMarkupError as error:
        sys.exit("Exercise markup error: %s" % error)
    for path, status in report:
        say("%-9s %s" % (status, os.path.relpath(path, ROOT)))
    run_these = [str(path) for path, status in report if status in ("new", "changed") or force and status == "unchanged"]
    if not run_these:
        say("No exercise edition to execute.")
        return 0
    return execute(run_these)


# Run by the course's Python, since this script cannot import cnnlib: a failed download ends
# with its message rather than a traceback.
DOWNLOAD_CODE = """\
import os, sys
from cnnlib.datasets import download_mnist
try:
    folder = download_mnist()
except (OSError, RuntimeError, ValueError) as error:
    sys.exit("[course] MNIST was not downloaded: %s" % error)
print("[course] MNIST is in %s" % folder)
if not os.environ.get("CNNLIB_DATA_DIR", "").strip():
    print("[course] To share it with a class, download into a shared folder named by CNNLIB_DATA_DIR.")
"""


def download():
    python = setup()
    say("Fetching MNIST into its cache ...")
    return run([python, "-c", DOWNLOAD_CODE])


def refuse(command, message):
    """End with a one-line message, no traceback, naming the command."""
    sys.exit("course.py %s: %s" % (command, message))


def check_arguments(command, args, options=(), positional=False):
    """Refuse the first of `args` that `command` does not take: an option not in `options`, or
    any plain argument unless `positional`."""
    see = "see `python3 course.py %s --help`" % command
    for arg in args:
        if arg.startswith("-"):
            if arg not in options:
                refuse(command, "unknown option %r; %s." % (arg, see))
        elif not positional:
            takes = "takes no extra arguments" + (" besides %s" % ", ".join(options) if options else "")
            refuse(command, "unexpected argument %r: `%s` %s; %s." % (arg, command, takes, see))


def notebook_problem(path):
    """Why `path` cannot be executed as a notebook, or None."""
    if not os.path.exists(path):
        return "%s: no such file" % path
    if not os.path.isfile(path) or not path.endswith(".ipynb"):
        return "%s: not a notebook (an .ipynb file)" % path
    return None


def main(argv):
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "help":  # `help lab` is `lab --help`
        if not rest:
            print(USAGE)
            return 0
        command, rest = rest[0], ["--help"]
    if command not in COMMANDS:
        sys.exit("Unknown command %r; the commands are %s (see `python3 course.py --help`)."
                 % (command, ", ".join(COMMANDS)))
    if command == "links":
        return links(rest)  # tools/links.py reads its own arguments, --help among them
    if "-h" in rest or "--help" in rest:
        print(HELP[command])
        return 0
    # Every argument is checked here, before anything is set up or written.
    if command == "test":
        return test(rest)  # pytest reads these
    if command == "setup":
        check_arguments(command, rest, options=("--tests",))
        setup(tests="--tests" in rest)
        return 0
    if command == "execute":
        check_arguments(command, rest, positional=True)
        for path in rest:
            if problem := notebook_problem(path):
                refuse(command, problem)
        return execute(rest)
    if command == "exercises":
        check_arguments(command, rest, options=("--force",), positional=True)
        tools = load_exercise_tools()
        for path in rest:
            if path != "--force" and (problem := tools.not_a_lesson(path, folder=os.path.join(ROOT, "notebooks"))):
                refuse(command, problem)
        return exercises(rest)
    check_arguments(command, rest)
    if command == "lab":
        return lab()
    return download()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
