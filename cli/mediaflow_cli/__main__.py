"""`python -m mediaflow_cli` and the `mediaflow` console script."""

from __future__ import annotations

from mediaflow_cli.app import run


def main() -> None:
    run()


if __name__ == "__main__":
    main()
