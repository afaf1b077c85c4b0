"""Shared test configuration: this folder on the import path (for `from helpers import ...`)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
