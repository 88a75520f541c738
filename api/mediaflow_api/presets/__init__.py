"""Presets for API users (issue 15): `preset=<name>` on the upload endpoints, and
`GET /api/v1/presets`."""
