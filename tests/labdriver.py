"""Drive JupyterLab in headless Chromium the way a learner uses it: open, Run All, look.

Used by test_browser.py. Three parts:

- `LabServer` starts `jupyter lab` on 127.0.0.1 with a random free port and token, in
  private config/data/settings folders, and always stops it (and its kernels).
- `launch_chromium` starts Debian's Chromium through Playwright; Playwright's own browser
  download cannot work on a closed network, so the executable is given explicitly.
- `run_and_inspect` opens one notebook in a loaded JupyterLab (`open_lab`), runs all cells
  through the Run menu, then visits every cell (JupyterLab 4 renders offscreen cells lazily)
  and reports what the browser shows; `close_notebooks` closes it and stops its kernel.
  `expected_outputs` reads the same facts from the committed notebook, to compare.
"""

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

CHROMIUM = os.environ.get("CNN_CHROMIUM", "/usr/bin/chromium")
# Without the networking flags Chromium keeps trying to reach Google's hosts, which a closed
# network refuses; --no-sandbox because CI runs as root.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1280, "height": 900}  # a laptop screen


def screenshot_folder():
    default = Path(__file__).resolve().parent.parent / "build" / "browser-screenshots"
    return Path(os.environ.get("CNN_SCREENSHOTS", default))

# How each ipywidgets model shows up in the DOM (ipywidgets 8 class names).
WIDGET_SELECTORS = {
    "IntSliderModel": ".widget-slider",
    "FloatSliderModel": ".widget-slider",
    "DropdownModel": ".widget-dropdown select",
    "ToggleButtonsModel": ".widget-toggle-buttons",
    "FloatProgressModel": ":is(.widget-hprogress, .widget-vprogress)",
    "IntProgressModel": ":is(.widget-hprogress, .widget-vprogress)",
    "HTMLModel": ".widget-html",
    "OutputModel": ".widget-output",
}
# Models that draw no control of their own: layout, style and the boxes that hold controls.
WIDGET_HOLDERS = {"LayoutModel", "BoxModel", "HBoxModel", "VBoxModel", "GridBoxModel"}
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


# ---------------------------------------------------------------------------------------
# The committed notebook: what a run must show

def strip_outputs(nb):
    """A copy of notebook `nb` with no outputs, counts or saved widget state.

    The browser must not get a head start: JupyterLab draws saved widget state even with no
    kernel, which would hide a widget that cannot render live.
    """
    nb = json.loads(json.dumps(nb))
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    nb["metadata"].pop("widgets", None)
    return nb


def expected_outputs(nb):
    """{cell index: {"images": int, "widgets": {selector: count}, "stderr": bool}} per code cell.

    Widget counts come from the saved widget state: the models reachable from each view
    shown in the cell (a box's children, a tqdm bar's parts). A widget view without saved
    state, or a model this file cannot find in the DOM, is an error here rather than a cell
    that silently expects nothing.
    """
    state = nb["metadata"].get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
    models = state.get("state", {})

    def reachable(model_id, seen):
        if model_id in seen:
            return
        if model_id not in models:
            raise ValueError(f"widget model {model_id} has no saved state: save the notebook with its widget state")
        seen.add(model_id)
        for value in models[model_id]["state"].values():
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, str) and item.startswith("IPY_MODEL_"):
                    reachable(item[len("IPY_MODEL_"):], seen)

    expected = {}
    for index, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        images, seen = 0, set()
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if WIDGET_VIEW in data:
                reachable(data[WIDGET_VIEW]["model_id"], seen)
            elif "image/png" in data:
                images += 1
        widgets = {}
        for model_id in seen:
            name = models[model_id]["model_name"]
            if name in WIDGET_SELECTORS:
                selector = WIDGET_SELECTORS[name]
                widgets[selector] = widgets.get(selector, 0) + 1
            elif name not in WIDGET_HOLDERS and not name.endswith("StyleModel"):
                raise ValueError(f"cell {index} shows a {name}: add its DOM selector to WIDGET_SELECTORS")
        if seen and not widgets:
            raise ValueError(f"cell {index} shows a widget with no control in it")
        stderr = any(out.get("name") == "stderr" for out in cell.get("outputs", []))
        expected[index] = {"images": images, "widgets": widgets, "stderr": stderr}
    return expected


# ---------------------------------------------------------------------------------------
# The server

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LabServer:
    """`jupyter lab` serving folder `root`, with everything it writes kept under `home`."""

    def __init__(self, root, home):
        self.root, self.home = Path(root), Path(home)
        self.token = secrets.token_hex(24)
        self.port = None
        self.process = None
        self.log_path = self.home / "jupyterlab.log"

    def url(self, path, query=""):
        return f"http://127.0.0.1:{self.port}/{path}?{query}token={self.token}"

    def api(self, method, path):
        request = urllib.request.Request(self.url("api/" + path), method=method)
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def _environment(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "MPLBACKEND"))}
        # Private folders: a learner's own config, kernelspecs (a "python3" in
        # ~/.local/share/jupyter would swap the kernel) or workspace must not leak in.
        for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR",
                     "JUPYTERLAB_SETTINGS_DIR", "JUPYTERLAB_WORKSPACES_DIR", "IPYTHONDIR"):
            folder = self.home / name.lower()
            folder.mkdir(parents=True, exist_ok=True)
            env[name] = str(folder)
        # The "get notified about Jupyter news?" toast would cover cells in the screenshots.
        settings = self.home / "jupyterlab_settings_dir" / "@jupyterlab" / "apputils-extension"
        settings.mkdir(parents=True, exist_ok=True)
        (settings / "notification.jupyterlab-settings").write_text(
            json.dumps({"fetchNews": "false", "checkForUpdates": False}))
        return env

    def start(self, timeout=90):
        self.home.mkdir(parents=True, exist_ok=True)
        for _ in range(3):  # another program may take the free port before the server does
            self.port = free_port()
            command = [sys.executable, "-m", "jupyter", "lab", "--no-browser",
                       "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}",
                       "--ServerApp.port_retries=0", f"--IdentityProvider.token={self.token}",
                       f"--ServerApp.root_dir={self.root}", "--LabApp.extension_manager=readonly",
                       # window.jupyterapp: open and close notebooks in one loaded page
                       "--LabApp.expose_app_in_browser=True"]
            if hasattr(os, "geteuid") and os.geteuid() == 0:
                command.append("--allow-root")
            with open(self.log_path, "ab") as log:
                self.process = subprocess.Popen(command, env=self._environment(), stdout=log,
                                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                                start_new_session=True)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.process.poll() is None:
                try:
                    self.api("GET", "status")
                    return
                except (urllib.error.URLError, ConnectionError, TimeoutError):
                    time.sleep(0.25)
            self.stop()
        raise RuntimeError(f"JupyterLab did not start; the end of its log:\n{self.log_tail()}")

    def log_tail(self, lines=30):
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def shutdown_kernels(self):
        for session in self.api("GET", "sessions"):
            self.api("DELETE", f"sessions/{session['id']}")

    def stop(self):
        """Stop the server and its kernels.

        Kernels are shut down through the API, then the server gets SIGTERM (it shuts down any
        kernel left) and, if it hangs, SIGKILL. Kernels run in sessions of their own, so after
        a SIGKILL they exit on their own, when ipykernel sees that its parent is gone.
        """
        if self.process is None or self.process.poll() is not None:
            return
        try:
            self.shutdown_kernels()
        except (OSError, ValueError):
            pass  # the server may be the thing that failed; stop it anyway
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


def launch_chromium(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
                                      timeout=60_000)


# ---------------------------------------------------------------------------------------
# A lesson in the browser

CELL = '.jp-Notebook .jp-Cell[data-windowed-list-index="{}"]'

# Finds the cell at `index` or scrolls one screen towards it; JupyterLab 4 only renders cells
# near the viewport, so a cell far away may not be in the DOM yet.
REVEAL_JS = """index => {
    const cell = document.querySelector(`.jp-Notebook .jp-Cell[data-windowed-list-index="${index}"]`);
    if (cell) { cell.scrollIntoView({block: "start"}); return true; }
    const outer = document.querySelector(".jp-Notebook .jp-WindowedPanel-outer");
    const shown = [...document.querySelectorAll(".jp-Notebook .jp-Cell[data-windowed-list-index]")]
        .map(e => Number(e.dataset.windowedListIndex));
    outer.scrollTop += (shown.length && index < Math.min(...shown) ? -1 : 1) * outer.clientHeight;
    return false;
}"""

# What one code cell shows, once its images have decoded.
INSPECT_JS = """async (cell, selectors) => {
    const all = [...cell.querySelectorAll(".jp-OutputArea-output img")];
    await Promise.all(all.map(img => img.decode().catch(() => null)));
    // Figures are the cell's own image outputs; images inside a widget belong to the widget.
    const imgs = all.filter(img => img.closest(".jp-RenderedImage") && !img.closest(".jupyter-widgets"));
    const outputs = [...cell.querySelectorAll(".jp-OutputArea-output")].map(o => ({
        mime: o.dataset.mimeType || "",
        text: (o.innerText || "").slice(0, 600),
    }));
    const widgets = {};
    for (const s of selectors) widgets[s] = cell.querySelectorAll(".jp-OutputArea-output " + s).length;
    return {
        prompt: (cell.querySelector(".jp-InputPrompt")?.innerText || "").trim(),
        outputs,
        images: imgs.filter(img => img.naturalWidth > 0 && img.naturalHeight > 0).length,
        brokenImages: all.filter(img => !(img.naturalWidth > 0)).length,
        widgets,
    };
}"""

# What JupyterLab and ipywidgets show instead of a widget that cannot render.
WIDGET_PROBLEMS = ("Error displaying widget", "Click to show javascript error", "Loading widget",
                   "Widget model not found", "Failed to load model class")
# A widget's text/plain form, what a front end without the widget manager shows instead:
# "VBox(children=(IntSlider(value=17, ...", "FlattenExplorer(children=...", "HBox(children=...".
WIDGET_AS_TEXT = re.compile(r"^\w+\((children|value|layout|description|options)=")


def open_lab(page, server, timeout=60_000):
    """Load JupyterLab in `page` with nothing open; the notebooks then open in it one by one,
    as a learner opens one lesson after another, without loading the whole app each time."""
    # reset: a fresh workspace, or JupyterLab reopens (and restarts the kernels of) the
    # notebooks opened before.
    page.goto(server.url("lab", query="reset&"), timeout=timeout)
    page.wait_for_function("() => window.jupyterapp", timeout=timeout)
    page.evaluate("() => window.jupyterapp.restored")


def open_notebook(page, server, name, timeout=60_000):
    """Open notebook `name` in the JupyterLab of `open_lab`, and wait for its kernel."""
    page.evaluate("path => window.jupyterapp.commands.execute('docmanager:open', {path})", name)
    page.wait_for_selector(CELL.format(0), timeout=timeout)
    # Run All before the kernel is connected silently runs nothing, and the toolbar's
    # indicator says "idle" even then; the status bar names the kernel once it is ready.
    wait_for_idle_kernel(page, name.rsplit("/", 1)[-1], timeout)  # it names the file, not its folder
    sidebar = page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current")
    if sidebar.count():
        sidebar.first.click()  # fold the file browser away: more room for the lesson


def close_notebooks(page, server):
    """Close every open notebook unsaved (the copies' runs are not kept), then stop the kernels."""
    page.evaluate("""() => {
        for (const widget of Array.from(window.jupyterapp.shell.widgets("main"))) {
            if (widget.context) widget.context.model.dirty = false;  // no "save changes?" dialog
            widget.close();
        }
    }""")
    page.wait_for_selector(".jp-Notebook", state="detached", timeout=20_000)
    server.shutdown_kernels()


def wait_for_idle_kernel(page, name, timeout=60_000):
    """Wait until the status bar shows notebook `name`'s kernel (`name`: the file name) idle."""
    from playwright.sync_api import expect

    status = page.locator(f'.jp-StatusBar-TextItem[title="Change kernel for {name}"]')
    expect(status).to_have_text(re.compile(r"\| Idle$"), timeout=timeout)


def run_all(page):
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()


def toggle_log_console(page):
    page.get_by_role("menuitem", name="View", exact=True).click()
    # By command, not by name and role: once open, the item is a checked "menuitemcheckbox".
    page.locator('.lm-Menu-item[data-command="logconsole:open"]').click()


def log_console_entries(page):
    """The messages in the Log Console of the open notebook (it is opened, read and closed).

    A traceback from a widget callback, e.g. one that runs when a slider moves, goes there
    and not into the cell.
    """
    toggle_log_console(page)
    console = page.locator(".jp-LogConsole").first
    console.wait_for()
    entries = console.locator(".jp-OutputArea-output").all_inner_texts()
    toggle_log_console(page)
    return entries


def prompts(page):
    """{cell index: input prompt text} for the code cells JupyterLab has in the DOM."""
    return page.evaluate("""() => Object.fromEntries(
        [...document.querySelectorAll(".jp-Notebook .jp-CodeCell[data-windowed-list-index]")]
        .map(c => [c.dataset.windowedListIndex, (c.querySelector(".jp-InputPrompt")?.innerText || "").trim()]))""")


def wait_until_run_ends(page, server, last_code_cell, n_code, timeout):
    """Wait until the last code cell shows [n_code], or the run stopped (an error ends Run All).

    Returns the seconds it took. A stopped run is recognised by an idle kernel while no cell
    in view is queued ([*]) for several polls in a row.
    """
    start = time.monotonic()
    quiet = 0
    while time.monotonic() - start < timeout:
        page.evaluate(REVEAL_JS, last_code_cell)  # keep the last cell rendered
        shown = prompts(page)
        if shown.get(str(last_code_cell)) == f"[{n_code}]:":
            return time.monotonic() - start
        kernels = [s["kernel"]["execution_state"] for s in server.api("GET", "sessions")]
        queued = any(p == "[*]:" for p in shown.values())
        quiet = quiet + 1 if not queued and kernels and all(k == "idle" for k in kernels) else 0
        if quiet >= 6:
            return time.monotonic() - start
        page.wait_for_timeout(500)
    raise TimeoutError(f"Run All did not finish in {timeout} s")


def reveal(page, index, timeout=20):
    deadline = time.monotonic() + timeout
    while not page.evaluate(REVEAL_JS, index):
        if time.monotonic() > deadline:
            raise TimeoutError(f"cell {index} never appeared")
        page.wait_for_timeout(100)
    return page.locator(CELL.format(index))


def inspect_cell(page, index, expected):
    """What code cell `index` shows, after waiting (briefly) for its widgets to render."""
    from playwright.sync_api import Error

    cell = reveal(page, index)
    final = [re.escape(m) for m in WIDGET_PROBLEMS if m != "Loading widget"] + [WIDGET_AS_TEXT.pattern]
    failed = cell.get_by_text(re.compile("|".join(final)))
    for selector, count in expected["widgets"].items():
        try:
            cell.locator(".jp-OutputArea-output " + selector).nth(count - 1).or_(failed).first.wait_for(timeout=15_000)
        except Error:
            break  # reported as a count mismatch below, with everything else the cell shows
    return cell.evaluate(INSPECT_JS, sorted(set(WIDGET_SELECTORS.values())))


def problems_in(index, seen, expected, execution_count):
    """The differences between what cell `index` shows and what it should show."""
    where = f"cell {index}"
    found = []
    if seen["prompt"] != f"[{execution_count}]:":
        found.append(f"{where}: prompt {seen['prompt']!r}, expected '[{execution_count}]:' (not run, or out of order)")
    for out in seen["outputs"]:
        text = out["text"].strip()
        # JupyterLab draws errors as stderr. The lessons' committed runs print nothing there, so
        # any stderr is news; where a committed cell does (a library's notice), only errors are.
        if out["mime"] == "application/vnd.jupyter.stderr" and (
                not expected["stderr"] or "Error" in text or "Traceback" in text or "Warning" in text):
            found.append(f"{where}: error output: {text[:400]}")
        for marker in WIDGET_PROBLEMS:
            if marker in text:
                found.append(f"{where}: a widget did not render: {text[:200]!r}")
        if expected["widgets"] and WIDGET_AS_TEXT.match(text):
            found.append(f"{where}: a widget is shown as text: {text[:200]!r}")
    if seen["brokenImages"]:
        found.append(f"{where}: {seen['brokenImages']} image(s) failed to load")
    if seen["images"] != expected["images"]:
        found.append(f"{where}: {seen['images']} figure image(s), the committed run has {expected['images']}")
    for selector, count in expected["widgets"].items():
        if seen["widgets"][selector] != count:
            found.append(f"{where}: {seen['widgets'][selector]} x {selector!r} in the DOM, expected {count}"
                         f" (outputs: {[o['text'][:80] for o in seen['outputs']]})")
    for selector, count in seen["widgets"].items():
        if count and selector not in expected["widgets"]:
            found.append(f"{where}: shows {count} x {selector!r}, the committed run shows none")
    return found


def run_and_inspect(page, server, name, expected, timeout, problem_shots=None):
    """Open notebook `name` (a path under the server's root), Run All, and list every way its
    cells differ from `expected`.

    `expected` is `expected_outputs` of the committed notebook. Cells with problems are
    screenshotted to `problem_shots` + "-problem-cell{index}.png" when it is given.
    """
    code = sorted(expected)
    open_notebook(page, server, name)
    run_all(page)
    wait_until_run_ends(page, server, code[-1], len(code), timeout)
    problems = []
    for count, index in enumerate(code, start=1):
        seen = inspect_cell(page, index, expected[index])
        found = problems_in(index, seen, expected[index], count)
        if found and problem_shots is not None:
            page.locator(CELL.format(index)).screenshot(path=f"{problem_shots}-problem-cell{index}.png")
        problems += found
    return problems
