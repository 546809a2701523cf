"""K2's benchmark harness (`task bench` → `python -m k2.bench`): figures as JSON, not tests."""
