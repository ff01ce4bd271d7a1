"""Evidence tests: make this folder's helper modules (idp_support) importable."""

from __future__ import annotations

import sys
from pathlib import Path

# pyproject's pythonpath lists the shared test folders; this one adds its own helpers here
# rather than in the shared configuration.
sys.path.insert(0, str(Path(__file__).parent))
