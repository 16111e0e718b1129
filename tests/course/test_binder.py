"""Binder's environment, rebuilt here as repo2docker builds it, runs a lesson.

What repo2docker does for this repository (read in jupyterhub/repo2docker's source:
buildpacks/python/__init__.py, buildpacks/conda/__init__.py, buildpacks/base.py, utils.py):

1. binder/runtime.txt says `python-3.11` and binder/ holds no environment.yml, Pipfile or
   Dockerfile, so the Python buildpack is chosen (the conda one is tried before it and would
   win if binder/environment.yml existed).
2. Before it looks at the repository, it creates /srv/conda/envs/notebook from its lock for
   Python 3.11 (environment.py-3.11-linux-64.lock): JupyterLab, Notebook, ipykernel, ipywidgets
   and the rest. For Python 3.11 that one environment serves both Jupyter and the kernel.
3. Its working folder is ${REPO_DIR} (the user's home). binder/requirements.txt has a local
   reference (`-e .`, see utils.is_local_pip_requirement), so the whole repository is copied
   there first, then it runs, from there,
       ${KERNEL_PYTHON_PREFIX}/bin/pip install --no-cache-dir -r "binder/requirements.txt"
   (without a local reference only that file is copied first, and the rest after the install).
4. Then, if it exists, `./binder/postBuild` runs from the same folder.

The slow test below does the same without Docker: a venv of this machine's Python 3.11 with the
lock's Python packages at the lock's versions from PyPI (tests/repo2docker-base-py3.11.txt), a
copy of the repository as its "home", the same pip command from there, postBuild if any; then
checks the environment (pip check, the widget extension, what is and is not installed) and runs
a lesson under nbval with a kernel of that venv. nbval itself runs from the test's own
environment, so that nothing for the tests is added to Binder's.

What this cannot reproduce: conda-forge's builds of the base packages (this machine cannot
reach conda-forge; PyPI's wheels of the same versions stand in), Docker and Binder's launch.

Building it downloads ~300 MB from PyPI, and tests never download: the build is a set-up step,
`.venv/bin/python tests/course/test_binder.py build`, which .ci/run runs before the tests (and which
anyone can run). The built environment is kept in build/binder-env/, keyed on the hash of every
file that went into it, and reused while none of them changes; the slow tests use it, and skip
when it is missing for today's files (under CI they fail instead).
"""

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parents[2]
BINDER = ROOT / "binder"
CACHE = ROOT / "build" / "binder-env"
LESSON = "notebooks/04-convolution-forward.ipynb"
KERNEL = "cnn-binder-rebuild"
# Part of the cache key: change it whenever the build steps below change.
RECIPE = "repo2docker pip route, v1"
# Files in binder/ that make repo2docker pick another buildpack than the Python one.
OTHER_ROUTES = ("environment.yml", "Pipfile", "Pipfile.lock", "Dockerfile", "pyproject.toml",
                "Project.toml", "REQUIRE", "default.nix", "install.R", "setup.py")


def requirement_lines(path):
    """The requirements of a pip requirements file: comments and blank lines dropped."""
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            lines.append(line)
    return lines


def runtime_python():
    """"3.11" from binder/runtime.txt's `python-3.11`."""
    runtime = (BINDER / "runtime.txt").read_text(encoding="utf-8").strip()
    match = re.fullmatch(r"python-(\d+\.\d+)", runtime)
    assert match, f"binder/runtime.txt must say python-X.Y, not {runtime!r}"
    return match.group(1)


def base_pins_file():
    return ROOT / "tests" / f"repo2docker-base-py{runtime_python()}.txt"


def is_local_requirement(line):
    """repo2docker's utils.is_local_pip_requirement, for the lines we write."""
    if line.startswith(("-r", "-c", "--requirement", "--constraint")):
        return True
    if line.startswith("--") and "=" in line:
        line = line.split("=", 1)[1]
    elif line.startswith("-"):
        parts = line.split(None, 1)
        if len(parts) == 1:
            return False
        line = parts[1]
    if "file://" in line:
        return True
    return line.split("://", 1)[-1].startswith(".")


def pyproject():
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)


# ------------------------------------------------------------------- quick checks of the files


def test_binder_takes_the_pip_route_with_a_python_that_pyproject_allows():
    version = runtime_python()
    allowed = SpecifierSet(pyproject()["project"]["requires-python"])
    assert allowed.contains(f"{version}.0"), f"runtime.txt's Python {version} is not allowed by {allowed}"
    others = [name for name in OTHER_ROUTES if (BINDER / name).exists()]
    assert not others, f"binder/ must hold no {others}: repo2docker would take another route than pip"
    assert base_pins_file().is_file(), f"no base environment for Python {version}: {base_pins_file()}"


def test_binder_requirements_are_the_course_package_at_the_tested_stack():
    lines = requirement_lines(BINDER / "requirements.txt")
    assert lines == ["-c ../constraints.txt", "-e ."], (
        "binder/requirements.txt must install the course package (`-e .`) under the tested stack's "
        f"pins (`-c ../constraints.txt`, read relative to the file), got {lines}")


def test_binder_installs_nothing_for_the_tests_and_leaves_jupyterlab_to_repo2docker():
    # Only `-e .` installs anything, and the course package requires no test tool or JupyterLab:
    # the constraints file pins versions, it never adds a package.
    runtime = {Requirement(pin).name.lower() for pin in pyproject()["project"]["dependencies"]}
    extras = pyproject()["project"]["optional-dependencies"]
    test_tools = {Requirement(pin).name.lower() for pins in extras.values() for pin in pins}
    assert not runtime & test_tools, f"Binder needs none of {sorted(runtime & test_tools)}"


def test_base_environment_file_pins_exact_versions_once():
    names = set()
    for line in requirement_lines(base_pins_file()):
        requirement = Requirement(line)
        assert re.fullmatch(r"==\d[\w.]*", str(requirement.specifier)), f"not an exact pin: {line}"
        assert requirement.name.lower() not in names, f"{requirement.name} pinned twice"
        names.add(requirement.name.lower())
    assert {"pip", "jupyterlab", "notebook", "ipykernel", "ipywidgets"} <= names


def test_requirements_local_reference_is_seen_as_repo2docker_sees_it():
    assert is_local_requirement("-e .") and is_local_requirement(".")
    assert is_local_requirement("--editable=.") and is_local_requirement("-r other.txt")
    assert not is_local_requirement("numpy==2.4.*") and not is_local_requirement("--pre")


# ------------------------------------------------------------------ the rebuild (slow, CI)


def python_for(version):
    if f"{sys.version_info[0]}.{sys.version_info[1]}" == version:
        return sys.executable
    found = shutil.which(f"python{version}")
    if found:
        return found
    message = f"binder/runtime.txt asks for Python {version}, which this machine does not have"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def inputs():
    """Every file whose content decides what the build installs."""
    files = [base_pins_file(), ROOT / "pyproject.toml", ROOT / "constraints.txt", BINDER / "runtime.txt",
             BINDER / "requirements.txt", BINDER / "postBuild"]
    return [path for path in files if path.exists()]


def cache_key():
    digest = hashlib.sha256(RECIPE.encode())
    for path in inputs():
        digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def repository_files():
    """The files a clone would hold: git's tracked files and new ones it does not ignore."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT, capture_output=True, check=True, timeout=60,
        ).stdout.decode().split("\0")
    except (OSError, subprocess.CalledProcessError) as error:
        pytest.fail(f"cannot list the repository's files with git: {error}")
    return [name for name in listed if name and (ROOT / name).is_file()]


def copy_repository(home, names):
    for name in names:
        target = home / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)


def clean_environment(venv=None):
    """This process's environment without its venv or pytest settings; `venv`'s bin first on PATH."""
    env = {key: value for key, value in os.environ.items()
           if key not in {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PYTEST_ADDOPTS", "PYTEST_PLUGINS"}
           and not key.startswith("PYTEST_XDIST") and key != "PYTEST_CURRENT_TEST"}
    if venv is not None:
        env["PATH"] = str(venv / "bin") + os.pathsep + env.get("PATH", "")
    return env


def run(command, cwd, env, timeout):
    """Run a build step; on failure, fail the test with the step and its output."""
    shown = " ".join(str(part) for part in command)
    try:
        result = subprocess.run([str(part) for part in command], cwd=cwd, env=env, timeout=timeout,
                                capture_output=True, text=True)
    except subprocess.TimeoutExpired:
        pytest.fail(f"`{shown}` (in {cwd}) took more than {timeout} s")
    if result.returncode != 0:
        pytest.fail(f"`{shown}` (in {cwd}) exited {result.returncode}:\n{result.stdout[-6000:]}\n{result.stderr[-6000:]}")
    return result.stdout + result.stderr


def build(folder, python):
    """repo2docker's steps 2-4 (see the module docstring) into folder/venv, folder/home."""
    venv, home = folder / "venv", folder / "home"
    env = clean_environment(venv)
    run([python, "-m", "venv", venv], ROOT, env, 300)
    pip_pin = next(line for line in requirement_lines(base_pins_file()) if line.startswith("pip=="))
    run([venv / "bin" / "python", "-m", "pip", "install", "--no-cache-dir", pip_pin], ROOT, env, 600)
    run([venv / "bin" / "pip", "install", "--no-cache-dir", "-r", base_pins_file()], ROOT, env, 1800)

    names = repository_files()
    local = any(map(is_local_requirement, requirement_lines(BINDER / "requirements.txt")))
    home.mkdir()
    copy_repository(home, names if local else ["binder/requirements.txt"])
    # The same command, from the same folder, with the same relative path as repo2docker.
    run([venv / "bin" / "pip", "install", "--no-cache-dir", "-r", "binder/requirements.txt"], home, env, 1800)
    if not local:
        copy_repository(home, names)
    post_build = home / "binder" / "postBuild"
    if post_build.exists():
        post_build.chmod(post_build.stat().st_mode | 0o111)
        run(["./binder/postBuild"], home, env, 1800)


def prepare(*, build_missing):
    """(venv, home) of the Binder rebuild for today's files, built first if build_missing.

    Without build_missing a missing build is None: the tests never download (only the set-up
    step does, `python tests/course/test_binder.py build`, which .ci/run runs before the tests).
    """
    import fcntl

    python = python_for(runtime_python())
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / "lock", "w") as lock:
        # Another run on this checkout waits here instead of building the same folder.
        fcntl.flock(lock, fcntl.LOCK_EX)
        key = cache_key()
        folder = CACHE / key
        done = folder / "complete"
        if not done.exists() and not build_missing:
            return None
        for old in CACHE.iterdir():
            if old.is_dir() and old.name != key:
                shutil.rmtree(old)  # built from files as they no longer are
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)  # an interrupted build is never reused
            folder.mkdir()
            build(folder, python)
            done.write_text(key + "\n")
        else:
            # The editable install points at home/cnnlib: a fresh copy of the repository at the
            # same place brings in today's code and lessons without reinstalling anything.
            shutil.rmtree(folder / "home")
            copy_repository(folder / "home", repository_files())
        return folder / "venv", folder / "home"


@pytest.fixture(scope="module")
def binder_env():
    """(venv, home): Binder's environment and the repository copy it was built from."""
    if os.name == "nt":
        pytest.skip("Binder builds on Linux; the rebuild uses a POSIX venv and file lock")
    built = prepare(build_missing=False)
    if built is None:
        message = ("Binder's environment is not built for these files: `.venv/bin/python tests/course/test_binder.py "
                   "build` builds it (it downloads ~300 MB from PyPI, a few minutes; .ci/run does it)")
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return built


@pytest.mark.slow
def test_binder_environment_is_consistent_and_holds_the_course_not_the_tests(binder_env):
    venv, home = binder_env
    env = clean_environment(venv)
    run([venv / "bin" / "pip", "check"], home, env, 300)
    probe = (
        "import importlib.metadata as m, importlib.util as u, json, cnnlib\n"
        "names = ['numpy', 'matplotlib', 'ipywidgets', 'scikit-learn', 'pooch', 'tqdm', 'threadpoolctl',"
        " 'jupyterlab', 'notebook']\n"
        "absent = ['pytest', 'nbval', 'hypothesis', 'playwright', 'xdist']\n"
        "print(json.dumps({'cnnlib': cnnlib.__file__, 'versions': {n: m.version(n) for n in names},"
        " 'present': [n for n in absent if u.find_spec(n)]}))\n"
    )
    # From the lessons' folder, as a kernel starts: the repository root is not on sys.path there.
    found = json.loads(run([venv / "bin" / "python", "-c", probe], home / "notebooks", env, 120).strip().splitlines()[-1])
    assert Path(found["cnnlib"]) == home / "cnnlib" / "__init__.py", "cnnlib must come from the repository copy"
    assert found["present"] == [], f"Binder must not install the test tools {found['present']}"
    stack = {Requirement(line).name: str(Requirement(line).specifier)[2:]
             for line in requirement_lines(ROOT / "constraints.txt")}
    for pin in pyproject()["project"]["dependencies"]:
        name = Requirement(pin).name
        assert found["versions"][name] == stack[name], f"{name} {found['versions'][name]} is not the tested {stack[name]}"
    base = {Requirement(line).name: str(Requirement(line).specifier)[2:]
            for line in requirement_lines(base_pins_file())}
    for name in ("jupyterlab", "notebook"):
        assert found["versions"][name] == base[name], f"{name} must stay repo2docker's {base[name]}"


@pytest.mark.slow
def test_binder_widgets_work_with_no_extra_step(binder_env):
    venv, home = binder_env
    listing = run([venv / "bin" / "jupyter", "labextension", "list"], home, clean_environment(venv), 300)
    lines = [line for line in listing.splitlines() if "@jupyter-widgets/jupyterlab-manager" in line]
    assert lines, f"JupyterLab has no widget manager extension:\n{listing}"
    assert "enabled" in lines[0] and "OK" in lines[0], f"the widget extension is not usable: {lines[0]}"


@pytest.mark.slow
def test_binder_environment_runs_a_lesson_under_nbval(binder_env, tmp_path):
    venv, home = binder_env
    kernels = tmp_path / "jupyter" / "kernels" / KERNEL
    kernels.mkdir(parents=True)
    # An absolute path: a kernelspec's bare "python" would be replaced by nbval's own interpreter.
    spec = {"argv": [str(venv / "bin" / "python"), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "Binder rebuild", "language": "python"}
    (kernels / "kernel.json").write_text(json.dumps(spec))
    env = clean_environment()  # nbval and pytest are this process's; only the kernel is Binder's
    env["JUPYTER_PATH"] = str(tmp_path / "jupyter")
    output = run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist", "--nbval",
                  "--nbval-kernel-name", KERNEL, LESSON], home, env, 900)
    assert re.search(r"\b\d+ passed\b", output) and " failed" not in output, output[-3000:]


if __name__ == "__main__":
    if sys.argv[1:] != ["build"]:
        sys.exit("usage: python tests/course/test_binder.py build   (builds Binder's environment in build/binder-env/)")
    venv, home = prepare(build_missing=True)
    print(f"[binder] environment ready: {venv}")
