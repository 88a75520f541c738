"""Entrypoint of the HTTP API (`mediaflow-api`, or `python -m mediaflow_api`)."""

import argparse
import sys
from importlib.metadata import version


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mediaflow-api", description="MediaFlow: the HTTP API.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {version('mediaflow')}")
    parser.parse_args(argv)
    print("mediaflow-api: the HTTP API is not implemented yet (issue 5)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
