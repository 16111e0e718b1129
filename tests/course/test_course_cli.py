"""course.py's doors: what each subcommand accepts, refuses and runs, before anything is set up.

Nothing here creates a virtual environment or runs pip or Jupyter: `run` (the one place
course.py starts a program) and `create_venv` are replaced by recorders, and the one test
that runs course.py as a program does so from a small copy of the repository, with pip
told not to reach any index.
"""

import importlib.util
import os
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LESSON = "02-dense-and-gradient-checking.ipynb"
SUBCOMMANDS = ("lab", "test", "setup", "execute", "exercises", "download", "links")


def load_course(scratch, root=ROOT):
    """course.py's globals, with `root` as the repository, its .venv in `scratch` (never the
    real one) and every program it would start recorded in ["started"]."""
    namespace = runpy.run_path(str(ROOT / "course.py"), run_name="course_under_test")["main"].__globals__
    started = []
    venv = Path(scratch) / ".venv"

    def create_venv():
        started.append(["create .venv"])
        (venv / "bin").mkdir(parents=True)
        (venv / "bin" / "python").touch()

    namespace.update(ROOT=str(root), VENV=str(venv), STAMP=str(venv / "installed.txt"),
                     TEST_STAMP=str(venv / "test-tools.txt"), venv_python=lambda: str(venv / "bin" / "python"),
                     create_venv=create_venv, say=lambda message: None,
                     run=lambda command: started.append(command) or 0)
    namespace["started"] = started
    return namespace


def refusal(course, argv):
    """The message `course.py argv` exits with (it must exit with one, not return or crash)."""
    with pytest.raises(SystemExit) as exit_info:
        course["main"](argv)
    assert isinstance(exit_info.value.code, str), exit_info.value.code
    return exit_info.value.code


# ---------------------------------------------------------------------------------------
# lab opens the start page

def test_lab_opens_the_start_page_with_the_file_browser_on_the_repository(tmp_path):
    course = load_course(tmp_path)
    course["setup"] = lambda tests=False: "the-course-python"
    assert course["main"](["lab"]) == 0
    [command] = course["started"]
    assert command[:4] == ["the-course-python", "-m", "jupyter", "lab"]
    roots = [a.split("=", 1)[1] for a in command if a.startswith("--ServerApp.root_dir=")]
    files = [a for a in command[4:] if not a.startswith("-")]
    # The root, not notebooks/: the lessons link to ../README.md and ../CONTRIBUTING.md.
    assert roots == [str(ROOT)], command
    assert files == [str(ROOT / "notebooks" / "00-start-here.ipynb")], command
    assert Path(files[0]).is_file()


# ---------------------------------------------------------------------------------------
# --help, and arguments a command does not take, before anything is installed

@pytest.mark.parametrize("command", SUBCOMMANDS)
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_every_subcommand_prints_its_usage_and_installs_nothing(tmp_path, capsys, command, flag):
    copy = small_copy(tmp_path)
    course = load_course(tmp_path, root=copy)
    assert course["main"]([command, flag]) == 0
    out = capsys.readouterr().out
    assert f"usage: python3 course.py {command}" in out, out
    assert course["started"] == [] and not (tmp_path / ".venv").exists() and not (copy / ".venv").exists()


def test_help_for_a_command_can_come_after_its_other_arguments(tmp_path, capsys):
    course = load_course(tmp_path, root=tmp_path)
    assert course["main"](["test", "-k", "conv", "--help"]) == 0
    assert course["main"](["help", "exercises"]) == 0
    out = capsys.readouterr().out
    assert "usage: python3 course.py test" in out and "usage: python3 course.py exercises" in out
    assert course["started"] == []


def small_copy(tmp_path):
    """What course.py needs before it sets anything up: itself, tools/, pyproject.toml, constraints.txt."""
    copy = tmp_path / "repo"
    copy.mkdir()
    for name in ("course.py", "pyproject.toml", "constraints.txt"):
        shutil.copy(ROOT / name, copy / name)
    shutil.copytree(ROOT / "tools", copy / "tools", ignore=shutil.ignore_patterns("__pycache__"))
    return copy


@pytest.mark.parametrize("argv", [["lab", "--help"], ["test", "--help"], ["setup", "-h"]])
def test_help_from_the_command_line_creates_no_venv(tmp_path, argv):
    copy = small_copy(tmp_path)
    # Should course.py start setting up after all, pip fails at once instead of downloading.
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_CONFIG_FILE": os.devnull}
    result = subprocess.run([sys.executable, "course.py", *argv], cwd=copy, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"usage: python3 course.py {argv[0]}" in result.stdout
    assert not (copy / ".venv").exists()
    assert "Traceback" not in result.stderr


def test_an_unknown_command_is_called_unknown_whatever_follows_it(tmp_path):
    course = load_course(tmp_path, root=tmp_path)
    for argv in (["xyz"], ["xyz", "now"], ["xyz", "--help"]):
        message = refusal(course, argv)
        assert message.startswith("Unknown command 'xyz'"), message
        assert "extra argument" not in message
    assert course["started"] == []


@pytest.mark.parametrize("argv, named", [
    (["lab", "now"], "'now'"),
    (["download", "now"], "'now'"),
    (["setup", "everything"], "'everything'"),
    (["setup", "--test"], "'--test'"),
    (["exercises", "--forse"], "'--forse'"),
    (["execute", "--all"], "'--all'"),
])
def test_an_unexpected_argument_is_named(tmp_path, argv, named):
    course = load_course(tmp_path, root=tmp_path)
    message = refusal(course, argv)
    assert named in message and argv[0] in message and "Unknown command" not in message, message
    assert "\n" not in message.strip(), message
    assert course["started"] == [] and not (tmp_path / ".venv").exists()


# ---------------------------------------------------------------------------------------
# set-up installs the tested stack, and again when it changes

def test_setup_installs_with_the_tested_stack_as_constraints(tmp_path):
    for name in ("pyproject.toml", "constraints.txt"):
        shutil.copy(ROOT / name, tmp_path / name)
    course = load_course(tmp_path, root=tmp_path)
    course["setup"](tests=True)
    [create, lean, tools] = course["started"]
    assert create == ["create .venv"]
    for command, target in ((lean, ".[lab]"), (tools, ".[lab,test,browser]")):
        assert command[1:4] == ["-m", "pip", "install"], command
        assert command[command.index("-c") + 1] == "constraints.txt", command
        assert command[command.index("-e") + 1] == target, command
    # pip runs from the repository (course.py's `run` uses it as the working directory).
    assert (ROOT / "constraints.txt").is_file()


def test_the_install_stamp_follows_pyproject_and_the_constraints(tmp_path):
    for name in ("pyproject.toml", "constraints.txt"):
        shutil.copy(ROOT / name, tmp_path / name)
    course = load_course(tmp_path, root=tmp_path)

    def installs():
        before = len(course["started"])
        course["setup"](tests=True)
        return [c[c.index("-e") + 1] for c in course["started"][before:] if "-e" in c]

    assert installs() == [".[lab]", ".[lab,test,browser]"]
    assert installs() == []
    with open(tmp_path / "constraints.txt", "a") as f:
        f.write("# a newer tested stack\n")
    assert installs() == [".[lab]", ".[lab,test,browser]"]
    assert installs() == []
    with open(tmp_path / "pyproject.toml", "a") as f:
        f.write("# another range\n")
    assert installs() == [".[lab]", ".[lab,test,browser]"]


def test_setup_without_constraints_says_what_is_missing(tmp_path):
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    course = load_course(tmp_path, root=tmp_path)
    message = refusal(course, ["setup"])
    assert "constraints.txt" in message and "missing" in message, message
    assert [c for c in course["started"] if "pip" in c] == []


# ---------------------------------------------------------------------------------------
# exercises and execute refuse what is not a lesson or a notebook, before writing anything

@pytest.fixture
def at_root(monkeypatch):
    monkeypatch.chdir(ROOT)


def editions_state():
    """The files under notebooks/exercises/ (names only: other work may re-execute an edition meanwhile)."""
    folder = ROOT / "notebooks" / "exercises"
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize("argument, reason", [
    ("notebooks/99-nope.ipynb", "no such file"),
    ("README.md", "not a notebook"),
    ("notebooks/README.md", "not a notebook"),
    ("notebooks", "not a notebook"),
    (f"notebooks/exercises/{LESSON}", f"an exercise edition, not a lesson: give notebooks/{LESSON}"),
])
def test_exercises_refuses_what_is_not_a_lesson(at_root, tmp_path, argument, reason):
    course = load_course(tmp_path)
    before = editions_state()
    message = refusal(course, ["exercises", argument])
    assert argument in message and reason in message, message
    assert "\n" not in message.strip(), message
    assert course["started"] == [] and editions_state() == before


def test_exercises_refuses_a_lesson_outside_the_repositorys_notebooks(tmp_path):
    elsewhere = tmp_path / "02-x.ipynb"
    shutil.copy(ROOT / "notebooks" / LESSON, elsewhere)
    course = load_course(tmp_path / "scratch")
    message = refusal(course, ["exercises", str(elsewhere)])
    assert str(elsewhere) in message and "not in this course's notebooks/" in message, message
    assert "\n" not in message.strip(), message
    assert course["started"] == [] and sorted(tmp_path.iterdir()) == [elsewhere]


def test_exercises_from_the_command_line_refuses_without_a_traceback():
    result = subprocess.run([sys.executable, "course.py", "exercises", "notebooks/99-nope.ipynb"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert result.stderr.strip() == "course.py exercises: notebooks/99-nope.ipynb: no such file", result.stderr
    assert not (ROOT / "notebooks" / "exercises" / "99-nope.ipynb").exists()


def test_exercises_takes_a_lesson_of_the_course(at_root, tmp_path):
    course = load_course(tmp_path)
    ran = []
    course["exercises"] = lambda args: ran.append(args) or 0
    assert course["main"](["exercises", "--force", f"notebooks/{LESSON}"]) == 0
    assert ran == [["--force", f"notebooks/{LESSON}"]]


@pytest.mark.parametrize("argument, reason", [
    ("notebooks/99-nope.ipynb", "no such file"),
    ("README.md", "not a notebook"),
])
def test_execute_refuses_what_is_not_a_notebook_before_setting_up(at_root, tmp_path, argument, reason):
    course = load_course(tmp_path)
    message = refusal(course, ["execute", argument])
    assert argument in message and reason in message, message
    assert course["started"] == [] and not (tmp_path / ".venv").exists()


def load_exercise_tools():
    spec = importlib.util.spec_from_file_location("course_exercises", ROOT / "tools" / "exercises.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("argument, reason", [
    ("notebooks/99-nope.ipynb", "no such file"),
    ("README.md", "not a notebook"),
    (f"notebooks/exercises/{LESSON}", "an exercise edition, not a lesson"),
])
def test_the_generator_script_refuses_what_is_not_a_lesson(at_root, capsys, argument, reason):
    tools = load_exercise_tools()
    before = editions_state()
    assert tools.main([argument]) == 2
    err = capsys.readouterr().err
    assert argument in err and reason in err and err.count("\n") == 1, err
    assert editions_state() == before


def test_the_generator_script_answers_help(capsys):
    tools = load_exercise_tools()
    assert tools.main(["--help"]) == 0
    assert "usage: python3 tools/exercises.py" in capsys.readouterr().out


def test_links_rewriting_the_course_table_does_not_reinstall(tmp_path):
    # `links` changes only [tool.course]; the next `lab` must not run pip again for that.
    copy = small_copy(tmp_path)
    course = load_course(tmp_path, root=copy)
    before = course["install_hash"]()
    pyproject = copy / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    pyproject.write_text(text.replace('repository = "OWNER/cnn-from-scratch"', 'repository = "someone/place"'),
                         encoding="utf-8")
    assert pyproject.read_text(encoding="utf-8") != text
    assert course["install_hash"]() == before
    pyproject.write_text(text.replace('"numpy>=2.0"', '"numpy>=2.1"'), encoding="utf-8")
    assert course["install_hash"]() != before
