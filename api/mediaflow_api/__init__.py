"""MediaFlow HTTP API (Litestar)."""
