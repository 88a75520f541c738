"""Entrypoint of the HTTP API (`mediaflow-api`, or `python -m mediaflow_api`)."""

import argparse
import sys
from importlib.metadata import version

import uvicorn
from pydantic import ValidationError

from mediaflow_api.app import create_app
from mediaflow_api.logs import configure_logging
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
    # proxy_headers=False: uvicorn would otherwise believe X-Forwarded-For from 127.0.0.1
    # (its default FORWARDED_ALLOW_IPS), i.e. from anything sharing the pod's network. The
    # client address is read by the rate limits alone, from MEDIAFLOW_API_TRUSTED_PROXIES
    # (auth/ratelimit.py `client_address`); the request's `client` stays the TCP peer.
    #
    # One process (no uvicorn workers): the metrics of prometheus_client's default registry
    # are the whole pod's. Logging is configured here, not by uvicorn (log_config=None), so
    # uvicorn's own records come out in the same format; its access log is replaced by the
    # API's request line (request_context.py).
    configure_logging(settings.log_format, settings.log_level)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        proxy_headers=False,
        log_config=None,
        access_log=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
