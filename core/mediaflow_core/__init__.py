"""The contract between MediaFlow's three programs: the HTTP API, the operator and the worker.

Each of them imports this package and none imports another (an import-linter contract in
pyproject.toml, run by `make lint`): the MediaJob resource and its options, the names on
Kubernetes objects, the worker's exit codes and termination message, result and upload naming,
object storage with its settings, and media sniffing. docs/architecture.md describes it.

Kept free of Kopf and of the Kubernetes client, and this module imports nothing: the worker
imports only the modules it needs (every millisecond of its start counts).
"""
