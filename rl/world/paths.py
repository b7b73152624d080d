"""Where the default demo world file lives."""

from pathlib import Path

WORLDS_DIR = Path(__file__).parent / "worlds"
DEFAULT_WORLD_FILE = WORLDS_DIR / "reference_account.yaml"
OTHER_WORLD_FILE = WORLDS_DIR / "other_account.yaml"  # a differently shaped account, for checks on two worlds
