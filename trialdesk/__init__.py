"""trialdesk: an open-source clinical-trial system.

The package layout and the direction of its dependencies are described in
``docs/package_structure.md``.
"""

from __future__ import annotations

__version__ = "0.1.0"
