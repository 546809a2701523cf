"""Errors of the ingest path (all K2Errors)."""

from __future__ import annotations

from k2.errors import K2Error


class IngestError(K2Error):
    """Base of every ingest error."""


class RecordError(IngestError):
    """One record cannot be ingested; it goes to the DLQ with `reason`."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class DlqBudgetExceededError(IngestError):
    """Too many invalid records in the window: a bad deploy, not bad luck. Stop loudly."""


class DlqDeliveryError(IngestError):
    """The DLQ did not acknowledge every dead letter; the batch must not be committed."""
