"""Entrypoint of the operator (`mediaflow-operator`, or `python -m mediaflow_operator`)."""

import argparse
import sys
from importlib.metadata import version


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="mediaflow-operator", description="MediaFlow: the operator."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version('mediaflow')}")
    parser.parse_args(argv)
    print("mediaflow-operator: the operator is not implemented yet (issue 3)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
