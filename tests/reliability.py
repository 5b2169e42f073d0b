"""Helpers of the reliability and security tests (issue 6).

``report`` prints the counts they exercised (``reliability: ...`` lines in the test output, so
that a CI log shows how many examples, requests, faults and routes); ``django_process`` starts
Django in a fresh process with only the given environment.
"""

import os
import subprocess
import sys


def report(request, line):
    """Write ``reliability: <line>`` on the terminal, outside pytest's output capture."""
    plugins = request.config.pluginmanager
    reporter, capture = plugins.get_plugin("terminalreporter"), plugins.get_plugin("capturemanager")
    if reporter is None or capture is None:
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line(f"reliability: {line}")


def django_process(var_dir, *args, code=None, **environ):
    """``manage.py <args>`` (or ``python -c code``) in a fresh process with only ``environ``."""
    from django.conf import settings

    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DJANGO_SETTINGS_MODULE": "thinger_http.settings",
        "VAR_DIR": str(var_dir),
        **environ,
    }
    command = [sys.executable, "-c", code] if code else [sys.executable, "manage.py", *args]
    return subprocess.run(
        command,
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
