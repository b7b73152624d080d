"""Where the default demo world files live, and how the world writes its state files (atomically)."""

import os
from pathlib import Path

WORLDS_DIR = Path(__file__).parent / "worlds"
DEFAULT_WORLD_FILE = WORLDS_DIR / "reference_account.yaml"
OTHER_WORLD_FILE = WORLDS_DIR / "other_account.yaml"  # a differently shaped account, for checks on two worlds


def atomic_write(path: Path, text: str) -> None:
    """Write `text` to `path` so that a reader (or a restart after a crash) sees the old file or the new, never half."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
