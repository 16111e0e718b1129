"""The set-up files agree with each other and with pyproject.toml.

pyproject.toml declares the supported ranges (a floor for each package); constraints.txt pins
the tested stack inside them, .ci/oldest-stack.txt the oldest (the floors). environment.yml
(conda) must pin constraints.txt's minor versions, partly in its pip: section, and the README
must show the commands that course.py and CI actually run. Binder's files (binder/) are checked
by test_binder.py.
"""

import ast
import os
import re
import runpy
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
IGNORED = {"python", "pip"}
# conda-forge's name -> PyPI's, where they differ. matplotlib-base is matplotlib without the Qt
# toolkit that conda-forge's `matplotlib` adds.
CONDA_TO_PIP = {"matplotlib-base": "matplotlib"}


def normalize(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def pyproject():
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)


CONDA_EXTRAS = ("lab", "test")  # "browser" (Playwright) is pip-only: Binder never runs the browser test


def requirements(extras=CONDA_EXTRAS):
    """{name: Requirement} of pyproject's runtime dependencies and `extras`."""
    project = pyproject()["project"]
    found = {}
    for line in list(project["dependencies"]) + [r for e in extras for r in project["optional-dependencies"][e]]:
        requirement = Requirement(line)
        name = normalize(requirement.name)
        assert name not in found, f"{name} is listed twice in pyproject.toml"
        found[name] = requirement
    return found


def exact_pins(path):
    """{name: version} of a pip requirements/constraints file whose every line is name==version."""
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9._-]+)==(\d[\w.]*)", line)
        assert match, f"{path.name}: {line!r} is not an exact pin name==version"
        name = normalize(match.group(1))
        assert name not in pins, f"{name} is pinned twice in {path.name}"
        pins[name] = match.group(2)
    return pins


def pinned_stack():
    return exact_pins(ROOT / "constraints.txt")


def oldest_stack():
    return exact_pins(ROOT / ".ci" / "oldest-stack.txt")


def pip_pins(extras=CONDA_EXTRAS):
    """{name: "X.Y"}: the minor version the tested stack pins, for what pyproject and `extras` list."""
    stack = pinned_stack()
    return {name: ".".join(stack[name].split(".")[:2]) for name in requirements(extras)}


def conda_dependencies(text):
    """(conda entries, pip entries) of the `dependencies:` list of a simple environment.yml.

    The pip entries are those of its `- pip:` item, a list indented deeper than the rest.
    """
    conda, pip, inside, item_indent, in_pip = [], [], False, None, False
    for line in text.splitlines():
        stripped = line.split("#", 1)[0].rstrip()
        if not stripped:
            continue
        if not line[0].isspace():  # a top-level key starts or ends the list
            inside = stripped == "dependencies:"
            continue
        if not inside:
            continue
        match = re.fullmatch(r"(\s+)-\s+(\S+)", stripped)
        assert match, f"cannot read environment.yml dependency line {line!r}"
        indent, entry = len(match.group(1)), match.group(2)
        if item_indent is None:
            item_indent = indent
        if indent == item_indent:
            in_pip = entry == "pip:"
            if not in_pip:
                conda.append(entry)
        else:
            assert in_pip and indent > item_indent, f"unexpected nesting in environment.yml: {line!r}"
            pip.append(entry)
    return conda, pip


def conda_pins():
    """{name: version} from environment.yml's conda entries `name=X.Y` (or a bare name)."""
    pins = {}
    for entry in conda_dependencies((ROOT / "environment.yml").read_text())[0]:
        name, _, version = entry.partition("=")
        assert not version.startswith("="), f"use conda's single '=' in {entry!r}"
        name = normalize(name)
        assert name not in pins, f"{name} is listed twice in environment.yml"
        pins[name] = version
    return pins


def conda_pip_pins():
    """{name: "X.Y"} from environment.yml's pip: section, each entry `name==X.Y.*`."""
    pins = {}
    for entry in conda_dependencies((ROOT / "environment.yml").read_text())[1]:
        match = re.fullmatch(r"([A-Za-z0-9._-]+)==(\d+\.\d+)\.\*", entry)
        assert match, f"environment.yml's pip: entry {entry!r} is not of the form name==X.Y.*"
        name = normalize(match.group(1))
        assert name not in pins, f"{name} is listed twice in environment.yml's pip: section"
        pins[name] = match.group(2)
    return pins


def environment_yml_pins():
    """{PyPI name: "X.Y"} of everything environment.yml installs, from conda or from pip."""
    conda = {CONDA_TO_PIP.get(name, name): version
             for name, version in conda_pins().items() if name not in IGNORED}
    pip = conda_pip_pins()
    both = sorted(set(conda) & set(pip))
    assert not both, f"environment.yml installs {both} both from conda-forge and from pip"
    return {**conda, **pip}


def test_pyproject_declares_floors_without_upper_bounds():
    # An upper bound would make pip downgrade a newer NumPy under Colab's running kernel.
    for name, requirement in requirements(pyproject()["project"]["optional-dependencies"]).items():
        specs = list(requirement.specifier)
        assert [s.operator for s in specs] == [">="], f"{requirement}: give a floor (>=X.Y) and nothing else"


def test_constraints_pin_exactly_what_pyproject_lists_inside_its_ranges():
    wanted = requirements(pyproject()["project"]["optional-dependencies"])
    stack = pinned_stack()
    assert sorted(stack) == sorted(wanted), "constraints.txt and pyproject.toml list different packages"
    for name, requirement in wanted.items():
        assert requirement.specifier.contains(stack[name]), f"constraints.txt's {name}=={stack[name]} is not {requirement}"


def test_oldest_stack_is_the_floors_of_the_runtime_dependencies():
    runtime = requirements(extras=())
    oldest = oldest_stack()
    assert sorted(oldest) == sorted(runtime), ".ci/oldest-stack.txt must pin exactly the runtime dependencies"
    for name, requirement in runtime.items():
        floor = Version(next(iter(requirement.specifier)).version)
        version = Version(oldest[name])
        assert requirement.specifier.contains(version), f"{name} {version} is below {requirement}"
        assert version.release[:2] == floor.release[:2], (
            f"the oldest stack's {name} {version} is not the floor's minor release {floor}: "
            "raise the floor or test the floor")
    # The floors are Colab's stack (README): at least NumPy 2.0, Matplotlib 3.10, scikit-learn 1.6.
    assert Version(oldest["numpy"]) < Version("2.1") and Version(oldest["matplotlib"]) < Version("3.11")
    assert Version(oldest["scikit-learn"]) < Version("1.7")


def test_cnnlib_refuses_a_numpy_older_than_2_with_what_to_do(tmp_path):
    fake = tmp_path / "numpy"
    fake.mkdir()
    (fake / "__init__.py").write_text("__version__ = '1.26.4'\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT)]))
    result = subprocess.run([sys.executable, "-c", "import cnnlib"], capture_output=True, text=True, env=env,
                            cwd=tmp_path, timeout=120)
    assert result.returncode != 0
    assert "ImportError: cnnlib needs NumPy 2.0 or newer" in result.stderr, result.stderr[-2000:]
    assert "NumPy 1.26.4" in result.stderr and "pip install 'numpy>=2'" in result.stderr


def course_py():
    return runpy.run_path(str(ROOT / "course.py"), run_name="course_under_test")["setup"].__globals__


def test_course_py_installs_jupyterlab_for_learners_and_every_extra_for_the_tests():
    extras = pyproject()["project"]["optional-dependencies"]
    namespace = course_py()
    assert namespace["TARGET"] == ".[lab]"
    assert [normalize(Requirement(r).name) for r in extras["lab"]] == ["jupyterlab"]
    tools = {normalize(Requirement(r).name) for extra in ("test", "browser") for r in extras[extra]}
    assert tools == {"pytest", "pytest-xdist", "hypothesis", "nbval", "playwright"}
    assert set(re.fullmatch(r"\.\[([a-z,]+)\]", namespace["TEST_TARGET"]).group(1).split(",")) == set(extras)
    assert set(extras) - set(CONDA_EXTRAS) == {"browser"}
    assert "playwright" not in environment_yml_pins()


def test_course_py_adds_the_test_tools_only_when_testing_and_only_once(tmp_path):
    namespace = course_py()
    venv = tmp_path / ".venv"
    python = venv / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.touch()
    installs = []

    def fake_run(command):
        installs.append(command[command.index("-e") + 1])
        return 0

    namespace.update(VENV=str(venv), STAMP=str(venv / "a.txt"), TEST_STAMP=str(venv / "b.txt"),
                     venv_python=lambda: str(python), say=lambda message: None, run=fake_run)
    namespace["setup"]()
    namespace["setup"]()
    assert installs == [".[lab]"]  # the lean install, once
    namespace["setup"](tests=True)
    namespace["setup"](tests=True)
    assert installs == [".[lab]", ".[lab,test,browser]"]  # the test tools, once
    (venv / "a.txt").write_text("an older pyproject.toml\n")
    namespace["setup"]()
    assert installs[2:] == [".[lab]"]
    (venv / "b.txt").write_text("an older pyproject.toml\n")
    namespace["setup"](tests=True)
    assert installs[3:] == [".[lab,test,browser]"]


def test_environment_yml_uses_conda_forge_and_the_course_name():
    text = (ROOT / "environment.yml").read_text()
    assert re.search(r"^name: cnn-from-scratch$", text, re.M), "environment.yml must be named cnn-from-scratch"
    channels = re.search(r"^channels:\n((?:\s+-.*\n)+)", text, re.M)
    assert channels, "environment.yml has no channels list"
    names = re.findall(r"-\s+(\S+)", channels.group(1))
    assert names and names[0] == "conda-forge" and set(names) <= {"conda-forge", "nodefaults"}, (
        f"environment.yml must use conda-forge only, not {names}"
    )


def test_environment_yml_pins_the_tested_stacks_minor_versions():
    conda = environment_yml_pins()
    pip = pip_pins()
    assert sorted(conda) == sorted(pip), "environment.yml and pyproject.toml list different packages"
    for name, minor in pip.items():
        assert conda[name] == minor, f"{name}: environment.yml pins {conda[name]!r}, constraints.txt {minor}.*"


def test_environment_yml_takes_matplotlib_without_qt():
    # conda-forge's `matplotlib` adds pyside6 (Qt), which the lessons' inline plots never use.
    assert "matplotlib" not in conda_pins(), "environment.yml must ask conda for matplotlib-base"
    assert "matplotlib-base" in conda_pins()


def test_environment_yml_reader_knows_the_pip_section():
    text = "name: x\ndependencies:\n  - python=3.11\n  - pip\n  - pip:\n      - a==1.2.*\n  - b=3.4\nchannels:\n  - c\n"
    assert conda_dependencies(text) == (["python=3.11", "pip", "b=3.4"], ["a==1.2.*"])
    with pytest.raises(AssertionError, match="unexpected nesting"):
        conda_dependencies("dependencies:\n  - a\n      - b\n")


def test_environment_yml_has_pip_and_a_python_that_pyproject_allows():
    pins = conda_pins()
    assert "pip" in pins, "environment.yml must install pip (its pip: section and `pip install -e .` use it)"
    python = pins.get("python")
    assert python and re.fullmatch(r"\d+\.\d+", python), "environment.yml must pin python=X.Y"
    allowed = SpecifierSet(pyproject()["project"]["requires-python"])
    # conda's python=3.11 means any 3.11.x: the first and a late patch release must both be allowed.
    for patch in (f"{python}.0", f"{python}.99"):
        assert allowed.contains(patch), f"python={python} does not satisfy requires-python {allowed}"


@pytest.mark.skipif(os.name == "nt", reason="no executable bit on Windows")
@pytest.mark.parametrize("script", [".ci/run"])
def test_scripts_are_executable(script):
    path = ROOT / script
    assert path.is_file(), f"{script} is missing"
    assert path.stat().st_mode & 0o111, f"{script} is not executable (chmod +x {script})"


def commands(text):
    """Non-comment lines of a shell script."""
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def test_readme_shows_the_two_quick_start_commands():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = re.search(r"^## Quick start\n(.*?)(?=^## |\Z)", readme, re.M | re.S)
    assert section, "README.md has no '## Quick start' section"
    for command in ("python3 course.py lab", "python3 course.py test"):
        # the command on a line of its own (a comment may follow), not e.g. `... tests`
        pattern = "^" + re.escape(command) + r"(\s|$)"
        assert re.search(pattern, section.group(1), re.M), f"Quick start does not show `{command}`"


def test_ci_runs_the_readme_test_command():
    lines = commands((ROOT / ".ci" / "run").read_text())
    assert "set -euo pipefail" in lines
    assert "python3 course.py test" in lines, ".ci/run must run `python3 course.py test`"


def test_course_py_minimum_python_matches_requires_python():
    requires = pyproject()["project"]["requires-python"]
    match = re.fullmatch(r">=\s*(\d+)\.(\d+)", requires)
    assert match, f"requires-python {requires!r} is not of the form >=X.Y"
    text = (ROOT / "course.py").read_text()
    assert f"MIN_PYTHON = ({match.group(1)}, {match.group(2)})" in text


def test_course_py_refuses_an_old_python_with_a_clear_message(monkeypatch):
    monkeypatch.setattr(sys, "version_info", (3, 10, 14, "final", 0))
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(ROOT / "course.py"), run_name="course_under_test")
    assert "needs Python 3.11 or newer" in str(exit_info.value.code)
    assert "this is Python 3.10" in str(exit_info.value.code)


def test_course_py_uses_only_the_standard_library():
    tree = ast.parse((ROOT / "course.py").read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module.split(".")[0])
    assert imported, "found no imports in course.py"
    assert imported <= sys.stdlib_module_names, f"not standard library: {imported - sys.stdlib_module_names}"


def test_readme_states_the_pytest_command_that_course_py_test_runs():
    namespace = runpy.run_path(str(ROOT / "course.py"), run_name="course_under_test")["test"].__globals__
    commands_run = []
    namespace.update(setup=lambda tests=False: tests and "python", say=lambda message: None,
                     run=lambda command: commands_run.append(command) or 0)
    assert namespace["test"]([]) == 0
    python, dash_m, *pytest_command = commands_run[0]
    shown = "`" + " ".join(pytest_command) + "`"
    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    assert f"`python3 course.py test` runs {shown}" in readme, f"README.md should say that course.py runs {shown}"
    # The learner's arguments come last, so that `-n 0` (one process, for --pdb or -s) wins.
    assert namespace["test"](["-n", "0", "--pdb"]) == 0
    assert commands_run[1] == commands_run[0] + ["-n", "0", "--pdb"]


def test_the_units_run_first_exist():
    # A renamed file, class or notebook would drop out of tests/conftest.py's order unnoticed.
    from conftest import LONGEST_FIRST

    for unit in LONGEST_FIRST:
        path, _, cls = unit.partition("::")
        assert (ROOT / path).is_file(), f"LONGEST_FIRST names {unit}: no such file"
        if cls:
            assert re.search(rf"^class {cls}\b", (ROOT / path).read_text(encoding="utf-8"), re.M), (
                f"LONGEST_FIRST names {unit}: no such class")
