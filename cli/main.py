"""`gaelp <group> <command>`: one argparse parser with a subparser per command group."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from cli import accounts, demo


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="gaelp", description="GAELP: automated paid acquisition.")
    groups = top.add_subparsers(dest="group", metavar="<group>", required=True)
    accounts.add_commands(groups)
    demo.add_commands(groups)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return int(args.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
