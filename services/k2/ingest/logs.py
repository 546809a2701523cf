"""Structured logs: one JSON object per line, with a `k2` dict of fields when given."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from typing import Any

# URL userinfo (`scheme://user:password@host`): the registry URL carries credentials.
_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")
# HTTP client libraries log every request URL at INFO: noise, and a credential leak.
_CHATTY_LOGGERS = ("httpx", "httpx2", "httpcore", "urllib3")


def redact(text: str) -> str:
    """`text` with every URL's userinfo masked."""
    return _USERINFO.sub("***@", text)


class JsonFormatter(logging.Formatter):
    """Formats records as JSON lines (time, level, logger, message, fields)."""

    def format(self, record: logging.LogRecord) -> str:
        """One JSON object."""
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        fields = getattr(record, "k2", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, default=str)


def configure_json_logging(level: int = logging.INFO) -> None:
    """Route every logger to stderr as JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in _CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
