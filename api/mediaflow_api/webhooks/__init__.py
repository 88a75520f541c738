"""Completion webhooks of API users (issue 15): signing secrets."""
