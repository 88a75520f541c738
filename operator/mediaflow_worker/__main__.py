"""Entrypoint of the worker (`mediaflow-worker`, or `python -m mediaflow_worker`)."""

import os
import signal
import sys
import time

from mediaflow_core import constants as c
from mediaflow_core.constants import EXIT_INTERNAL, EXIT_OK, REASON_TRANSIENT_ERROR

from .cost import metering
from .errors import TransientError, WorkerError
from .report import (
    failure_message,
    log,
    redact,
    request_id,
    success_message,
    write_termination,
)


def _stop(signum: int, _frame: object) -> None:
    # Raised in the main thread, so pipeline's finally blocks kill the tool and clean up.
    raise TransientError(f"the worker was stopped by signal {signum} before it finished")


def _arguments(argv: list[str]) -> int | None:
    """--help and --version; None when there is a job to run (no arguments, as in the pod)."""
    import argparse  # only when there are arguments: every millisecond of start-up counts

    parser = argparse.ArgumentParser(
        prog="mediaflow-worker",
        description="MediaFlow: the worker. Reads MEDIAFLOW_* environment variables.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    if parser.parse_args(argv).version:
        from importlib.metadata import version

        print(f"mediaflow-worker {version('mediaflow')}")
        return EXIT_OK
    return None


def main(argv: list[str] | None = None) -> int:
    """Run the job described by the environment; the exit code follows the contract.

    Called without `argv` (the console script, `python -m mediaflow_worker`), it ends the
    process itself once the result is written and stdout flushed: `os._exit` skips the
    interpreter's teardown, 20-40 ms of freeing pydantic's objects that nobody waits for.
    """
    args = sys.argv[1:] if argv is None else argv
    code = _arguments(args) if args else None
    if code is None:
        code = _job()
    if argv is None:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _job() -> int:
    # No plugin is installed; this spares pydantic a scan of every package's entry points.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

    signal.signal(signal.SIGTERM, _stop)
    if os.environ.get(c.ENV_REQUEST_ID):  # the API request that made the MediaJob
        request_id.set(os.environ[c.ENV_REQUEST_ID])
    if os.environ.get(c.ENV_SESSION) == "1":
        return _session()
    started = time.monotonic()
    termination = os.environ.get("MEDIAFLOW_TERMINATION_LOG") or "/dev/termination-log"
    with metering() as meter:
        try:
            # Here, not at the top: the option models (pydantic) load with it, after the
            # variable.
            from .pipeline import run
            from .settings import settings_from_env

            settings = settings_from_env(os.environ)
            log("start", operation=settings.operation, threads=settings.threads)
            result = {**run(settings), "cost": meter.report()}
        except WorkerError as exc:
            message = redact(str(exc))
            spent = meter.report()
            write_termination(termination, failure_message(exc.reason, message, spent))
            seconds = round(time.monotonic() - started, 3)
            log("failed", reason=exc.reason, exit=exc.exit_code, message=message,
                seconds=seconds, cost=spent)  # fmt: skip
            return exc.exit_code
        except Exception as exc:
            message = f"internal error in the worker ({type(exc).__name__}); retrying may help"
            spent = meter.report()
            write_termination(termination, failure_message(REASON_TRANSIENT_ERROR, message, spent))
            log(
                "failed",
                reason=REASON_TRANSIENT_ERROR,
                exit=EXIT_INTERNAL,
                error=f"{type(exc).__name__}: {redact(str(exc))[:300]}",
                cost=spent,
            )
            return EXIT_INTERNAL
    write_termination(termination, success_message(result))
    log("done", seconds=round(time.monotonic() - started, 3), **result)
    return EXIT_OK


def _session() -> int:
    """A warm pod (session.py): its items' outcomes are log lines; it ends with 0 unless it
    could not start (a broken environment), or was stopped."""
    from .session import serve, session_settings_from_env

    try:
        base, session = session_settings_from_env(os.environ)
        log("start", mode="session", threads=base.threads, concurrency=session.concurrency)
        serve(base, session)
    except WorkerError as exc:
        log("failed", reason=exc.reason, exit=exc.exit_code, message=redact(str(exc)))
        return exc.exit_code
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
