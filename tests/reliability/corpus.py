"""A corpus of bad (and awkward but valid) trade messages, each kind with its designed outcome.

Bodies are built field by field (`TradeBody`) so a test can break exactly one thing: a length,
a union branch, an enum index, a decimal's bytes. Every produced message carries a
`k2.test.id` header (kept by the DLQ) and, when its body decodes, a `trade_id` of the same
value, so the test can account for each message by identity in the table or the DLQ.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal

from k2.bench.encoding import frame
from k2.serde.primitives import encode_bytes, encode_decimal, encode_long, encode_string

TEST_ID_HEADER = "k2.test.id"
BASE_US = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z
SCALE = 10**8  # price decimal(18,8), size decimal(28,8)
WRITTEN = "written"


@dataclass(frozen=True)
class TradeBody:
    """The fields of a trade v2 body, each already Avro-encoded (override any one)."""

    trade_id: bytes
    exchange: bytes = field(default=encode_string("XASX"))
    symbol: bytes = field(default=encode_string("BHP"))
    instrument_id: bytes = b"\x00"  # union branch 0: null
    venue_sequence: bytes = encode_long(1)
    event_time: bytes = encode_long(BASE_US)
    event_time_nanos: bytes = b"\x00"
    receive_time: bytes = encode_long(BASE_US + 5)
    price: bytes = encode_decimal(45 * SCALE + 12_345_678)
    size: bytes = encode_decimal(100 * SCALE)
    currency: bytes = field(default=encode_string("AUD"))
    side: bytes = encode_long(0)  # BUY
    conditions: bytes = encode_long(1) + encode_string("XT") + encode_long(0)
    v2_tail: bytes = b"\x00\x00\x00"  # buyer, seller, settlement: null
    v3_tail: bytes = b""  # a field only the v3 test schema has

    def encode(self) -> bytes:
        """The body: fields concatenated in schema order."""
        return b"".join(
            (
                self.trade_id,
                self.exchange,
                self.symbol,
                self.instrument_id,
                self.venue_sequence,
                self.event_time,
                self.event_time_nanos,
                self.receive_time,
                self.price,
                self.size,
                self.currency,
                self.side,
                self.conditions,
                self.v2_tail,
                self.v3_tail,
            )
        )


@dataclass(frozen=True)
class Message:
    """One produced message: key, value and its corpus id."""

    test_id: str
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True)
class Kind:
    """A kind of input and where it must end up: WRITTEN or a DLQ reason."""

    name: str
    outcome: str
    messages: tuple[Message, ...]
    # For written kinds: the exact `symbol` value the table must hold (unicode round trip).
    symbol: str | None = None


@dataclass(frozen=True)
class SchemaIds:
    """Registry ids the corpus frames with (registered by the test)."""

    v1: int
    v2: int
    v3: int
    quote: int
    not_a_record: int
    # A Trade whose symbol is nullable, registered under another subject by a careless producer.
    nullable_symbol: int


def build_corpus(ids: SchemaIds) -> list[Kind]:
    """Every kind, with unique trade ids and symbols so nothing collides by accident."""
    kinds: list[Kind] = []

    def body(name: str, **fields: bytes) -> tuple[str, TradeBody]:
        test_id = f"{name}-0"
        values = {
            "trade_id": encode_string(test_id),
            "symbol": encode_string(f"S_{name}"),
            **fields,
        }
        return test_id, TradeBody(**values)

    def one(name: str, outcome: str, make: Callable[[str, TradeBody], bytes | None]) -> None:
        test_id, trade = body(name)
        value = make(test_id, trade)
        kinds.append(Kind(name, outcome, (Message(test_id, b"k", value),)))

    def field_kind(name: str, outcome: str, **fields: bytes) -> None:
        test_id, trade = body(name, **fields)
        kinds.append(Kind(name, outcome, (Message(test_id, b"k", frame(ids.v2, trade.encode())),)))

    def v2(trade: TradeBody) -> bytes:
        return frame(ids.v2, trade.encode())

    # --- framing ------------------------------------------------------------------------------
    one("no_magic_byte", "bad_framing", lambda _i, t: b"\x01" + v2(t)[1:])
    one("json_payload", "bad_framing", lambda i, _t: b'{"trade_id": "' + i.encode() + b'"}')
    one("short_header", "bad_framing", lambda _i, _t: b"\x00\x00\x01")
    one("empty_payload", "bad_framing", lambda _i, _t: b"")
    one("tombstone", "empty_value", lambda _i, _t: None)
    one("unknown_schema_id", "unknown_schema_id", lambda _i, t: frame(2**31 - 7, t.encode()))
    one("schema_of_other_subject", "wrong_schema", lambda _i, t: frame(ids.quote, t.encode()))
    one(
        "schema_not_a_record", "unsupported_schema", lambda _i, _t: frame(ids.not_a_record, b"\x02")
    )
    # --- body structure -----------------------------------------------------------------------
    one("truncated_body", "truncated_body", lambda _i, t: v2(t)[:-4])
    one("trailing_garbage", "trailing_bytes", lambda _i, t: v2(t) + b"\xde\xad\xbe\xef")
    one("body_cut_after_header", "truncated_body", lambda _i, t: v2(t)[:5])
    field_kind("string_length_past_end", "truncated_body", currency=encode_long(10_000) + b"AUD")
    field_kind("negative_string_length", "truncated_body", exchange=encode_long(-3) + b"XASX")
    field_kind("invalid_utf8_symbol", "undecodable_body", symbol=encode_bytes(b"\xff\xfeBHP"))
    field_kind("enum_index_out_of_range", "undecodable_body", side=encode_long(7))
    field_kind("union_branch_out_of_range", "undecodable_body", instrument_id=encode_long(5))
    # --- decimals -----------------------------------------------------------------------------
    field_kind("decimal_empty_bytes", "non_positive_price", price=encode_bytes(b""))
    field_kind("decimal_exceeds_precision", "invalid_value", price=encode_decimal(10**18))
    field_kind(
        "decimal_oversized_bytes", "invalid_value", size=encode_bytes(b"\x7f" + b"\xff" * 20)
    )
    field_kind("zero_price", "non_positive_price", price=encode_decimal(0))
    field_kind("negative_price", "non_positive_price", price=encode_decimal(-1))
    field_kind("zero_size", "non_positive_size", size=encode_decimal(0))
    field_kind("negative_size", "non_positive_size", size=encode_decimal(-100 * SCALE))
    # --- timestamps ---------------------------------------------------------------------------
    field_kind("event_time_epoch_zero", "implausible_event_time", event_time=encode_long(0))
    field_kind("event_time_negative", "implausible_event_time", event_time=encode_long(-(10**15)))
    far_future = BASE_US + 1_000 * 365 * 86_400 * 10**6
    field_kind(
        "event_time_far_future", "implausible_event_time", event_time=encode_long(far_future)
    )
    field_kind("event_time_beyond_calendar", "undecodable_body", event_time=encode_long(2**62))
    # --- identity fields ----------------------------------------------------------------------
    field_kind("empty_symbol", "empty_symbol", symbol=encode_string(""))
    field_kind("whitespace_symbol", "empty_symbol", symbol=encode_string(" \t "))
    field_kind("empty_exchange", "empty_exchange", exchange=encode_string(""))
    field_kind("empty_currency", "empty_currency", currency=encode_string(""))
    test_id = "empty_trade_id-0"
    kinds.append(
        Kind(
            "empty_trade_id",
            "empty_trade_id",
            (
                Message(
                    test_id,
                    b"k",
                    v2(TradeBody(trade_id=encode_string(""), symbol=encode_string("S_e"))),
                ),
            ),
        )
    )
    # --- valid but awkward: accepted exactly ------------------------------------------------
    for name, symbol in (
        ("unicode_emoji", "🚀🦘"),
        ("unicode_combining", "e\u0301\u0308Z"),
        ("unicode_rtl", "\u05d0\u05d1\u200f\u0627"),
        ("unicode_nul_and_controls", "A\x00B\x1f\x7f"),
        ("unicode_bom_and_nonchars", "\ufeffX\uffff\U0010ffff"),
        ("unicode_cjk_long", "株式" * 200),
    ):
        test_id = f"{name}-0"
        trade = TradeBody(trade_id=encode_string(test_id), symbol=encode_string(symbol))
        kinds.append(Kind(name, WRITTEN, (Message(test_id, b"k", v2(trade)),), symbol=symbol))
    big = encode_long(1) + encode_string("Z" * 700_000) + encode_long(0)
    field_kind("oversized_message", WRITTEN, conditions=big)
    field_kind("wrong_key", WRITTEN)
    kinds[-1] = replace(kinds[-1], messages=(replace(kinds[-1].messages[0], key=b"\xff" * 64),))
    field_kind("no_key", WRITTEN)
    kinds[-1] = replace(kinds[-1], messages=(replace(kinds[-1].messages[0], key=None),))
    field_kind(
        "extreme_valid_decimals", WRITTEN, price=encode_decimal(10**18 - 1), size=encode_decimal(1)
    )
    test_id, trade = body("older_schema_v1")
    kinds.append(Kind("older_schema_v1", WRITTEN, (Message(test_id, b"k", _v1(ids.v1, trade)),)))
    test_id, trade = body("newer_schema_v3", v3_tail=b"\x02" + encode_string("flag-v3"))
    kinds.append(
        Kind("newer_schema_v3", WRITTEN, (Message(test_id, b"k", frame(ids.v3, trade.encode())),))
    )
    # --- identity and sequence ------------------------------------------------------------------
    original = TradeBody(trade_id=encode_string("dup-0"), symbol=encode_string("S_dup"))
    kinds.append(Kind("duplicate_original", WRITTEN, (Message("dup-0", b"S_dup", v2(original)),)))
    again = replace(original, price=encode_decimal(46 * SCALE))  # same identity, other content
    kinds.append(Kind("duplicate_identity", "duplicate", (Message("dup-1", b"S_dup", v2(again)),)))
    kinds.append(_sequence_kind(ids, "sequence_gap", "S_GAP", (1, 2, 5)))
    kinds.append(_sequence_kind(ids, "sequence_out_of_order", "S_OOO", (1, 2, 3, 2)))
    return kinds


def known_bug_kinds(ids: SchemaIds) -> list[Kind]:
    """Kinds the worker mishandles today (reported); kept apart so the main run stays green."""
    test_id = "null_where_required-0"
    trade = TradeBody(trade_id=encode_string(test_id), symbol=b"\x00")  # union branch 0: null
    message = Message(test_id, b"k", frame(ids.nullable_symbol, trade.encode()))
    valid = TradeBody(trade_id=encode_string("after_null-0"), symbol=encode_string("S_after_null"))
    return [
        Kind("null_where_required", "null_in_required_field", (message,)),
        # A good record behind it must still land (no poison pill).
        Kind(
            "after_null", WRITTEN, (Message("after_null-0", b"k", frame(ids.v2, valid.encode())),)
        ),
    ]


def _v1(schema_id: int, trade: TradeBody) -> bytes:
    return frame(schema_id, replace(trade, v2_tail=b"").encode())


def _sequence_kind(ids: SchemaIds, name: str, symbol: str, sequences: tuple[int, ...]) -> Kind:
    messages = []
    for n, sequence in enumerate(sequences):
        test_id = f"{name}-{n}"
        trade = TradeBody(
            trade_id=encode_string(test_id),
            symbol=encode_string(symbol),
            venue_sequence=encode_long(sequence),
        )
        messages.append(Message(test_id, symbol.encode(), frame(ids.v2, trade.encode())))
    return Kind(name, WRITTEN, tuple(messages))


def expected_price(kind: str) -> Decimal | None:
    """Exact price of a written kind whose price is not the default."""
    return Decimal(10**18 - 1) / SCALE if kind == "extreme_valid_decimals" else None
