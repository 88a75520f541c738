"""Entrypoint of the worker (`mediaflow-worker`, or `python -m mediaflow_worker`)."""

import argparse
import sys
from importlib.metadata import version


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mediaflow-worker", description="MediaFlow: the worker.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {version('mediaflow')}")
    parser.parse_args(argv)
    print("mediaflow-worker: the worker is not implemented yet (issue 4)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
