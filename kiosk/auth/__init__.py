"""Signing in: server-side web sessions with idle and absolute timeouts, and brute-force
throttles whose counters live in the database so that every gunicorn worker sees them."""
