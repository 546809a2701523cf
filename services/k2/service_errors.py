"""Failures of the stack's services, as K2 errors: one place that knows the clients' exceptions.

pyarrow's S3 filesystem, librdkafka, the registry client, pyiceberg's REST client and httpx
each report a stopped service or refused credentials in their own way. `classify` turns them
(or a K2 error caused by them) into `ServiceUnavailableError` / `AuthenticationError`, so the
command line shows one line and one exit code, and a notebook gets a K2Error to catch.
A client's module is consulted only when it is already imported: an exception of a module
nobody imported cannot be in hand, and `k2 --help` stays free of those imports.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from k2.errors import (
    AuthenticationError,
    ConfigError,
    K2Error,
    NotFoundError,
    ServiceUnavailableError,
    UsageError,
)

_AUTH_WORDS = (
    "ACCESS_DENIED",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "Unauthorized",
    "Forbidden",
    "Authentication failed",
    "SASL authentication",
)
_HINT = "is the stack running? `./task stack:status`"
# Kinds that already say what happened: kept as they are, whatever caused them.
_KINDS = (AuthenticationError, ConfigError, NotFoundError, ServiceUnavailableError, UsageError)


def _first_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text if len(text) <= 300 else text[:297] + "..."


def _is_auth_status(status: object) -> bool:
    return status in {401, 403}


def _from_kafka(e: BaseException) -> K2Error | None:
    kafka = sys.modules.get("confluent_kafka")
    if kafka is None or not isinstance(e, kafka.KafkaException):
        return None
    error = e.args[0] if e.args else None
    code = error.code() if isinstance(error, kafka.KafkaError) else None
    auth_codes = {kafka.KafkaError._AUTHENTICATION, kafka.KafkaError.SASL_AUTHENTICATION_FAILED}
    if code in auth_codes:
        return AuthenticationError(f"Kafka refused the credentials: {_first_line(e)}")
    return ServiceUnavailableError(f"Kafka did not answer: {_first_line(e)} ({_HINT})")


def _from_registry(e: BaseException) -> K2Error | None:
    module = sys.modules.get("confluent_kafka.schema_registry.error")
    if module is None or not isinstance(e, module.SchemaRegistryError):
        return None
    if _is_auth_status(e.http_status_code):
        return AuthenticationError(
            "the schema registry refused the credentials in K2_SCHEMA_REGISTRY_URL "
            f"(HTTP {e.http_status_code})"
        )
    if e.http_status_code >= 500:
        return ServiceUnavailableError(f"the schema registry failed: {_first_line(e)}")
    return None


def _from_iceberg(e: BaseException) -> K2Error | None:
    module = sys.modules.get("pyiceberg.exceptions")
    if module is None:
        return None
    if isinstance(e, module.UnauthorizedError | module.ForbiddenError | module.OAuthError):
        return AuthenticationError(f"the Iceberg catalog refused the request: {_first_line(e)}")
    if isinstance(e, module.ServerError | module.ServiceUnavailableError):
        return ServiceUnavailableError(f"the Iceberg catalog failed: {_first_line(e)} ({_HINT})")
    return None


def _from_http(e: BaseException) -> K2Error | None:
    httpx = sys.modules.get("httpx")
    if httpx is None:
        return None
    if isinstance(e, httpx.HTTPStatusError) and _is_auth_status(e.response.status_code):
        return AuthenticationError(f"{e.request.url.host} refused the credentials")
    if isinstance(e, httpx.HTTPError):
        return ServiceUnavailableError(f"HTTP request failed: {_first_line(e)} ({_HINT})")
    return None


def _from_os(e: BaseException) -> K2Error | None:
    if not isinstance(e, OSError):
        return None
    if e.filename is not None:
        # A local file (an --output path, a data directory): the user's input, not a service.
        return UsageError(f"{e.strerror or _first_line(e)}: {e.filename}")
    text = _first_line(e)
    if any(word in text for word in _AUTH_WORDS):
        # pyarrow's S3 filesystem: wrong K2_S3_ACCESS_KEY_ID / K2_S3_SECRET_ACCESS_KEY.
        return AuthenticationError(f"the object store refused the credentials: {text}")
    # Connection refused/reset, timeouts, pyarrow's NETWORK_CONNECTION, requests' errors.
    return ServiceUnavailableError(f"a service did not answer: {text} ({_HINT})")


_TRANSLATORS = (_from_kafka, _from_registry, _from_iceberg, _from_http, _from_os)


def translate(e: BaseException) -> K2Error | None:
    """`e` as a service failure, or None when it is not one of the clients' known errors."""
    for translator in _TRANSLATORS:
        found = translator(e)
        if found is not None:
            return found
    return None


def classify(e: BaseException) -> K2Error | None:
    """The K2 error that best says what happened, or None for an unexpected error (a bug).

    A K2 error of a kind in `_KINDS` is kept. Any other K2 error (e.g. a `ContractError` around
    a registry 401) or a foreign exception is judged by the first service failure among it and
    its causes (`raise ... from`), so a wrapped "401" still reads as refused credentials.
    """
    if isinstance(e, _KINDS):
        return e
    current: BaseException | None = e
    seen: list[BaseException] = []
    while current is not None and current not in seen:
        seen.append(current)
        found = None if isinstance(current, K2Error) else translate(current)
        if found is not None:
            if isinstance(e, K2Error):
                # The K2 error's message names what K2 was doing; its cause gives the kind.
                found = type(found)(str(e))
            found.__cause__ = e
            return found
        current = current.__cause__
    return e if isinstance(e, K2Error) else None


@contextmanager
def service_errors() -> Iterator[None]:
    """Re-raise the clients' known service failures as K2 errors (`raise ... from` them)."""
    try:
        yield
    except K2Error:
        raise
    except Exception as e:
        found = translate(e)
        if found is None:
            raise
        raise found from e
