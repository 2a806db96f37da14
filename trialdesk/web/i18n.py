"""Compiling the French translations (``.po`` → ``.mo``) with Babel: no system gettext needed."""

from __future__ import annotations

from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po


def compile_catalogs(locale_dirs: list[Path]) -> list[Path]:
    """Compile every ``LC_MESSAGES/*.po`` below ``locale_dirs``; return the ``.mo`` files."""
    written = []
    for root in locale_dirs:
        for po_path in sorted(Path(root).glob("*/LC_MESSAGES/*.po")):
            with po_path.open("rb") as handle:
                catalog = read_po(handle, locale=po_path.parent.parent.name)
            mo_path = po_path.with_suffix(".mo")
            with mo_path.open("wb") as handle:
                write_mo(handle, catalog, use_fuzzy=False)
            written.append(mo_path)
    return written
