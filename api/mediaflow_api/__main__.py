"""Entrypoint of the HTTP API (`mediaflow-api`, or `python -m mediaflow_api`)."""

import argparse
import sys
from importlib.metadata import version

import uvicorn
from pydantic import ValidationError

from mediaflow_api.app import create_app
from mediaflow_api.settings import ApiSettings


def main(argv: list[str] | None = None) -> int:
    """Serve the API with uvicorn on the host and port of the settings."""
    parser = argparse.ArgumentParser(
        prog="mediaflow-api",
        description="MediaFlow: the HTTP API. Configured by MEDIAFLOW_API_* and MEDIAFLOW_S3_* "
        "environment variables.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version('mediaflow')}")
    parser.parse_args(argv)
    try:
        settings = ApiSettings()  # type: ignore[call-arg]  # required fields come from env
    except ValidationError as error:
        # Without the input values: they may hold secrets.
        for problem in error.errors(include_input=False, include_url=False):
            field = str(problem["loc"][0]) if problem["loc"] else None
            if field in ApiSettings.model_fields:
                where = ApiSettings.env_name(field)
            else:
                where = field or "settings"
            print(f"mediaflow-api: {where}: {problem['msg']}", file=sys.stderr)
        return 2
    # The API sits behind a Service/Ingress; trust X-Forwarded-* only from the local hop.
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, proxy_headers=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
