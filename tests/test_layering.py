"""The import graph between the project's packages (issue 19): read from the source with ``ast``,
so a new import that closes a cycle fails here, not in production's import order.

The layers, bottom up: ``core`` (shared pieces, imports no app), then the apps: ``accounts`` (API
logins and tokens), ``buckets`` and ``endpoints`` (beside each other), then ``devices``, whose
callback writes buckets, calls endpoints and takes owners' tokens, then ``dashboards``, which
read devices and buckets. An app imports only what is below it; the project package
``thinger_http`` (settings, URLs, WSGI, Celery, the user admin) is above them all and imported by
none.
"""

import ast
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
LAYERS = {"core": 0, "accounts": 1, "buckets": 1, "endpoints": 1, "devices": 2, "dashboards": 3}


def imports_between_packages():
    """{(importer, imported): [where, ...]} for every import from one package into another."""
    found = {}
    for package in LAYERS:
        for path in sorted((BASE_DIR / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            tree = ast.parse(path.read_text(), filename=str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    modules = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    modules = [node.module]
                else:
                    continue
                for module in modules:
                    target = module.split(".")[0]
                    if target in LAYERS and target != package:
                        where = f"{path.relative_to(BASE_DIR)}:{node.lineno} imports {module}"
                        found.setdefault((package, target), []).append(where)
    return found


def cycles(edges):
    """Every cycle of the directed graph ``edges`` (pairs), as lists of nodes."""
    graph = {}
    for source, target in edges:
        graph.setdefault(source, set()).add(target)
    found = []

    def walk(node, path):
        for nxt in sorted(graph.get(node, ())):
            if nxt == path[0]:
                found.append([*path, nxt])
            elif nxt not in path and nxt > path[0]:
                walk(nxt, [*path, nxt])

    for start in sorted(graph):
        walk(start, [start])
    return found


def test_no_import_cycle_between_packages():
    edges = imports_between_packages()

    assert cycles(edges) == [], {pair: where for pair, where in edges.items()}


def test_each_package_imports_only_what_is_below_it():
    upward = {
        pair: where
        for pair, where in imports_between_packages().items()
        if LAYERS[pair[1]] >= LAYERS[pair[0]]
    }

    assert upward == {}


def test_no_app_imports_the_project_package():
    imports = []
    for package in LAYERS:
        for path in sorted((BASE_DIR / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                names = (
                    [alias.name for alias in node.names]
                    if isinstance(node, ast.Import)
                    else [node.module or ""]
                    if isinstance(node, ast.ImportFrom) and node.level == 0
                    else []
                )
                imports += [
                    f"{path}:{node.lineno}" for n in names if n.split(".")[0] == "thinger_http"
                ]

    assert imports == []


def test_the_cycle_finder_finds_cycles():
    # The checks above pass on an empty result: make sure a cycle would be seen.
    assert cycles([("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")]) == [["a", "b", "c", "a"]]
    assert cycles([("a", "b"), ("b", "a")]) == [["a", "b", "a"]]
    assert cycles([("a", "b"), ("b", "c")]) == []
