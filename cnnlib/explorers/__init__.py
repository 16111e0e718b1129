"""Interactive ipywidgets explorers for the lessons, one module per lesson topic.

Each explorer returns a widget to display, and has a matching static figure function so a
lesson still reads well on GitHub or without a running kernel. Submodules are imported on
first use, so `import cnnlib` never pays for ipywidgets.
"""

import importlib

_WHERE = {
    "conv_explorer": "conv",
    "pool_explorer": "pool",
    "flatten_explorer": "flatten",
}


def __getattr__(name):
    if name in _WHERE:
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
