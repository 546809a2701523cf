"""Locust load against K2's ingest (`task load` → `python -m loadtest.run`)."""
