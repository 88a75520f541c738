"""Entrypoint of the operator (`mediaflow-operator`, or `python -m mediaflow_operator`)."""

import argparse
import sys
from importlib.metadata import version

from mediaflow_operator import stopping

stopping.install()  # first, before the slow imports (see stopping.py)

import kopf  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="mediaflow-operator",
        description="MediaFlow operator: runs MediaJobs as Kubernetes Jobs. Settings come from "
        "MEDIAFLOW_* environment variables (see mediaflow_operator/config.py).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version('mediaflow')}")
    parser.add_argument(
        "--namespace",
        action="append",
        help="watch only this namespace (repeatable); default: every namespace",
    )
    parser.add_argument("--liveness-port", type=int, default=None, help="default: 8080")
    parser.add_argument("--verbose", action="store_true", help="log at debug level")
    args = parser.parse_args(argv)

    from mediaflow_operator import handlers  # noqa: F401  (registers the handlers)
    from mediaflow_operator.config import LeaderElectionSettings, OperatorSettings

    port = args.liveness_port or OperatorSettings.model_fields["liveness_port"].default
    kopf.configure(verbose=args.verbose, log_format=kopf.LogFormat.JSON)
    # /metrics before the election: a standby answers too (mediaflow_operator_leader 0).
    from mediaflow_operator import metrics

    metrics.serve(OperatorSettings().metrics_port)
    election = LeaderElectionSettings()
    elector = None
    if election.enabled:
        # Several replicas: only the Lease's holder goes on to start Kopf; a standby waits here
        # (answering /healthz) and never handles anything. See mediaflow_operator/leader.py.
        from mediaflow_operator import leader

        elector = leader.lead(election, port)
        if elector is None:  # stopped while a standby: it never led, nothing to hand over
            return 0
    if stopping.requested.is_set():  # SIGTERM before Kopf could start: hand the Lease on
        if elector is not None:
            elector.release()
        return 0
    try:
        kopf.run(
            # Kopf's own peering stays off: with leader election only one replica runs Kopf.
            standalone=True,
            clusterwide=not args.namespace,
            namespaces=args.namespace or (),
            liveness_endpoint=f"http://0.0.0.0:{port}/healthz",
            # The orphan sweep touches only the namespaces watched here.
            memo=kopf.Memo(namespaces=tuple(args.namespace or ())),
        )
    finally:
        # Kopf has stopped (SIGTERM, or an error): nothing is handled any more, so the Lease
        # can go to a standby now rather than after it expires.
        if elector is not None:
            elector.release()
    return 0


if __name__ == "__main__":
    sys.exit(main())
