"""Structured logs never carry credentials from URLs."""

from __future__ import annotations

import io
import json
import logging

from k2.ingest.logs import JsonFormatter, configure_json_logging, redact


def test_redact_masks_userinfo_only() -> None:
    text = "GET http://k2reg:s3cr3t@127.0.0.1:8080/apis/ccompat/v7 then http://plain/x"
    assert redact(text) == "GET http://***@127.0.0.1:8080/apis/ccompat/v7 then http://plain/x"


def test_a_logged_url_loses_its_password() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger("k2.test.redaction")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        log.info("registry at %s", "http://user:pa55word@host:1/apis")
    finally:
        log.removeHandler(handler)
    line = json.loads(stream.getvalue())
    assert "pa55word" not in stream.getvalue()
    assert line["message"] == "registry at http://***@host:1/apis"


def test_http_client_request_logs_are_quiet() -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_json_logging()
        assert not logging.getLogger("httpx").isEnabledFor(logging.INFO)
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
