"""The replay clock: publish as fast as possible, or at N times market speed."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from k2.errors import ConfigError

MAX = "max"


def parse_speed(text: str) -> float | None:
    """`max` (None: no pacing) or a positive multiple of market time such as `10` or `0.5`."""
    if text.strip().lower() == MAX:
        return None
    try:
        speed = float(text.rstrip("xX"))
    except ValueError as e:
        raise ConfigError(f"--speed must be 'max' or a positive number, got {text!r}") from e
    if not speed > 0:
        raise ConfigError(f"--speed must be positive, got {text!r}")
    return speed


@dataclass
class Pacer:
    """Sleeps so that event time advances `speed` times faster than wall time.

    The first event anchors both clocks. Events earlier than the anchor (slightly out of order
    sources) are published immediately.
    """

    speed: float | None
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic
    _anchor: tuple[datetime, float] | None = field(default=None, init=False)

    def wait_for(self, event_time: datetime) -> None:
        """Block until `event_time` is due (no-op at max speed)."""
        if self.speed is None:
            return
        if self._anchor is None:
            self._anchor = (event_time, self.monotonic())
            return
        first_event, first_wall = self._anchor
        due = first_wall + (event_time - first_event).total_seconds() / self.speed
        delay = due - self.monotonic()
        if delay > 0:
            self.sleep(delay)


@dataclass
class RatePacer:
    """Holds a steady records-per-second rate (0 or less: no limit)."""

    rate: float
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic
    _start: float | None = field(default=None, init=False)
    _sent: int = field(default=0, init=False)

    def wait(self) -> None:
        """Block until the next record is due."""
        if self.rate <= 0:
            return
        if self._start is None:
            self._start = self.monotonic()
        due = self._start + self._sent / self.rate
        self._sent += 1
        delay = due - self.monotonic()
        if delay > 0:
            self.sleep(delay)
