"""The demo tests parse each study file once per session (the files do not change meanwhile)."""

from __future__ import annotations

from pathlib import Path

import pytest

_PARSED: dict[str, object] = {}


def _parsed_once(path):
    from trialdesk.protocol import load_study

    key = str(Path(path).resolve())
    if key not in _PARSED:
        _PARSED[key] = load_study(path)
    return _PARSED[key]


@pytest.fixture(scope="module")
def studies_parsed_once():
    from trialdesk.protocol import services

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(services, "load_study", _parsed_once)
        yield
