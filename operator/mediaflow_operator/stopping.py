"""SIGTERM before Kopf runs.

The operator is its container's PID 1, and PID 1 receives no signal it has no handler for.
Until Kopf installs its own handler (when it starts, after the imports and, with several
replicas, after the leader election), a SIGTERM was simply lost: a standby, or an operator
still starting, went on for the pod's whole grace period (30 s) and was then SIGKILLed, and
a standby could take the Lease in that time and start Kopf. This handler, installed first
thing, remembers the request; every step up to Kopf's start looks at it (leader.lead,
__main__, the startup handler)."""

from __future__ import annotations

import signal
import threading

requested = threading.Event()


def install() -> None:
    signal.signal(signal.SIGTERM, lambda *_: requested.set())
