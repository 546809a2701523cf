"""The local backend: K2's real services as native processes on 127.0.0.1 (no Docker)."""
