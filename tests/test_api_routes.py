"""Every operation of the Thinger.io reference subset is routed here, with method and parameters."""

import json
from pathlib import Path

import pytest
from django.urls import Resolver404, resolve

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"
REFERENCE_FILE = REFERENCE / "thinger-openapi-subset.json"
SAMPLE = {
    "user": "alice",
    "device": "sensor-1",
    "bucket": "bucket_1",
    "endpoint": "hook1",
    "property": "state",
    "token": "token_1",
    "file": "export_1",
}


def reference_operations():
    if not REFERENCE_FILE.exists():
        return []
    spec = json.loads(REFERENCE_FILE.read_text())
    operations = []
    for path, item in spec["paths"].items():
        for method in item:
            if method == "parameters":
                continue
            versions = ["v1", "v2"] if "{version}" in path else [None]
            for version in versions:
                concrete = path.replace("{version}", version or "")
                for name, value in SAMPLE.items():
                    concrete = concrete.replace("{" + name + "}", value)
                label = f"{method.upper()} {path}" + (f" ({version})" if version else "")
                operations.append(pytest.param(method.upper(), concrete, path, id=label))
    return operations


def allows(match, method):
    view = match.func
    cls = getattr(view, "cls", None) or getattr(view, "view_class", None)
    if cls is not None:
        return hasattr(cls, method.lower())
    raise AssertionError(f"unknown kind of view {view!r}")


@pytest.mark.skipif(not REFERENCE_FILE.exists(), reason="shared/reference is not beside the repo")
@pytest.mark.parametrize(("method", "url", "template"), reference_operations())
def test_reference_operation_is_routed(method, url, template):
    try:
        match = resolve(url)
    except Resolver404:
        pytest.fail(f"{method} {template}: no route for {url}")
    expected = {part[1:-1] for part in template.split("/") if part.startswith("{")} - {"version"}
    assert expected <= set(match.kwargs), f"{template}: path parameters {match.kwargs}"
    for name in expected:
        assert match.kwargs[name] == SAMPLE[name]
    assert allows(match, method), f"{method} is not handled on {template}"
