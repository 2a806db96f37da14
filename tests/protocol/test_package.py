"""The study-file machinery is free of Django: other tools can load a study without a project."""

from __future__ import annotations

import subprocess
import sys

DJANGO_FREE = [
    "trialdesk.protocol",
    "trialdesk.protocol.errors",
    "trialdesk.protocol.expressions",
    "trialdesk.protocol.schema",
    "trialdesk.protocol.checks",
    "trialdesk.protocol.loader",
    "trialdesk.protocol.commands",
]


def test_the_protocol_package_imports_no_django():
    code = (
        "import importlib, sys\n"
        f"for name in {DJANGO_FREE!r}:\n"
        "    importlib.import_module(name)\n"
        "leaked = sorted(m for m in sys.modules if m == 'django' or m.startswith('django.'))\n"
        "print(','.join(leaked))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == ""
