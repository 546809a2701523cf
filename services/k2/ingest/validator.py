"""Market-data validation on whole Arrow columns: each failing row gets one reason.

Rules are data, declared per dataset in `contracts/catalogue.yaml` (`ingest.validation`):
(reason, check, columns). A rule whose columns the batch lacks is skipped
(an older writer schema). Nulls pass the rules; requiredness is the table's: a writer schema
may declare a column nullable (or lack it) that the table requires, and such rows cannot be
written (Parquet refuses nulls in a required column), so they are rejected first with
`null_in_required_field`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc

from k2.contracts.catalogue import Dataset, ValidationRule, load_catalogue

Check = Callable[[pa.RecordBatch, "Bounds"], pa.Array]  # True = row passes
NULL_IN_REQUIRED = "null_in_required_field"


@dataclass(frozen=True)
class Bounds:
    """Plausible event-time range in UTC microseconds."""

    min_event_time_us: int
    max_event_time_us: int

    @classmethod
    def around_now(cls, min_event_time_us: int, max_future_skew_s: float) -> Bounds:
        """From a fixed floor up to now plus the allowed clock skew."""
        now_us = time.time_ns() // 1_000
        return cls(min_event_time_us, now_us + int(max_future_skew_s * 1_000_000))


@dataclass(frozen=True)
class Rule:
    """One validation rule."""

    reason: str
    columns: tuple[str, ...]
    check: Check


def _positive(column: str) -> Check:
    def check(batch: pa.RecordBatch, _bounds: Bounds) -> pa.Array:
        values = batch.column(column)
        return pc.greater(values, pa.scalar(Decimal(0), type=values.type))

    return check


def _non_empty(column: str) -> Check:
    def check(batch: pa.RecordBatch, _bounds: Bounds) -> pa.Array:
        return pc.greater(pc.utf8_length(pc.utf8_trim_whitespace(batch.column(column))), 0)

    return check


def _plausible_time(column: str) -> Check:
    def check(batch: pa.RecordBatch, bounds: Bounds) -> pa.Array:
        values = batch.column(column)
        low = pa.scalar(bounds.min_event_time_us, type=values.type)
        high = pa.scalar(bounds.max_event_time_us, type=values.type)
        return pc.and_(pc.greater_equal(values, low), pc.less_equal(values, high))

    return check


def _not_before(later: str, earlier: str) -> Check:
    def check(batch: pa.RecordBatch, _bounds: Bounds) -> pa.Array:
        return pc.greater_equal(batch.column(later), batch.column(earlier))

    return check


def rule_of(spec: ValidationRule) -> Rule:
    """The executable rule of a catalogue rule (`contracts/catalogue.yaml`)."""
    if spec.non_empty:
        return Rule(spec.reason, spec.columns, _non_empty(spec.non_empty))
    if spec.positive:
        return Rule(spec.reason, spec.columns, _positive(spec.positive))
    if spec.plausible_time:
        return Rule(spec.reason, spec.columns, _plausible_time(spec.plausible_time))
    later, earlier = spec.columns
    return Rule(spec.reason, spec.columns, _not_before(later, earlier))


@dataclass(frozen=True)
class Rejection:
    """A row that failed validation."""

    row: int
    reason: str


class Validator:
    """Applies one dataset's rules."""

    def __init__(self, rules: Sequence[Rule], min_event_time_us: int, max_future_skew_s: float):
        self._rules = list(rules)
        self._min_event_time_us = min_event_time_us
        self._max_future_skew_s = max_future_skew_s

    @classmethod
    def for_dataset(
        cls, dataset: Dataset | str, min_event_time_us: int, max_future_skew_s: float
    ) -> Validator:
        """The validator of `dataset` (or of the catalogue's dataset of that name), from its
        catalogue rules; ContractError when the catalogue gives it none."""
        if isinstance(dataset, str):
            dataset = load_catalogue().dataset(dataset)
        rules = [rule_of(spec) for spec in dataset.ingest_spec().validation]
        return cls(rules, min_event_time_us, max_future_skew_s)

    @property
    def reasons(self) -> list[str]:
        """Every reason this validator can give."""
        return [NULL_IN_REQUIRED, *dict.fromkeys(rule.reason for rule in self._rules)]

    def rejections(
        self, batch: pa.RecordBatch, required: frozenset[str] = frozenset()
    ) -> list[Rejection]:
        """Failing rows, each with its first failing reason; `required` names the table's
        required columns (null or absent there: `null_in_required_field`)."""
        bounds = Bounds.around_now(self._min_event_time_us, self._max_future_skew_s)
        names = set(batch.schema.names)
        reasons: dict[int, str] = {}
        for column in sorted(required):
            if column not in names:
                return [Rejection(row, NULL_IN_REQUIRED) for row in range(batch.num_rows)]
            values = batch.column(column)
            if values.null_count:
                for row in pc.indices_nonzero(pc.is_null(values)).to_pylist():
                    reasons.setdefault(row, NULL_IN_REQUIRED)
        for rule in self._rules:
            if not all(c in names for c in rule.columns):
                continue
            passed = pc.fill_null(rule.check(batch, bounds), True)
            if pc.all(passed).as_py():
                continue
            failed = pc.indices_nonzero(pc.invert(passed)).to_pylist()
            for row in failed:
                reasons.setdefault(row, rule.reason)
        return [Rejection(row, reason) for row, reason in sorted(reasons.items())]
