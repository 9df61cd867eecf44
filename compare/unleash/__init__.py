"""Tenantry's unleash face against a real Unleash 8.2 (issue 16): one request corpus, sent to
both, answers compared on the points a client relies on (points.py). See README.md."""
