"""The `mediaflow` command line (issue 14): MediaFlow's HTTP API from a terminal or a script.

It talks HTTP only (httpx) and imports nothing of the API, the operator or the worker
(pyproject's import-linter contract): what it knows of the API is docs/api.md.
"""
