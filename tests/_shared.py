"""Where the shared test data lives: ../shared/data next to the checkout (see ../shared/data/README.md),
or GENFAST_SHARED_DATA. Tests that read it skip when it is absent."""

import os
from pathlib import Path

SHARED_DATA = Path(os.environ.get("GENFAST_SHARED_DATA")
                   or Path(__file__).resolve().parents[1].parent / "shared" / "data")
