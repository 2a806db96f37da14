"""The statistics modules import neither Django nor any other part of trialdesk."""

from __future__ import annotations

import subprocess
import sys

MODULES = [
    "trialdesk.stats.allocation",
    "trialdesk.stats.ancova",
    "trialdesk.stats.bayes",
    "trialdesk.stats.counts",
    "trialdesk.stats.exact",
    "trialdesk.stats.linear",
    "trialdesk.stats.multiple_imputation",
    "trialdesk.stats.power",
]


def test_stats_modules_load_without_django_or_other_trialdesk_packages():
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in MODULES)
        + "bad = sorted(m for m in sys.modules if m == 'django' or m.startswith('django.')\n"
        "    or (m.startswith('trialdesk.') and not m.startswith('trialdesk.stats')))\n"
        "print(','.join(bad))\n"
    )
    env = {"PATH": "", "PYTHONNOUSERSITE": "1"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.strip() == ""
