"""Worker tuning (`K2_INGEST_*`); endpoints come from `k2.settings.Endpoints`."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from k2.ingest.commit_policy import CommitPolicy

INGEST_ENV_PREFIX = "K2_INGEST_"


class IngestSettings(BaseSettings):
    """Tuning of one ingest worker. Defaults aim at ~1 s freshness and bounded memory."""

    model_config = SettingsConfigDict(env_prefix=INGEST_ENV_PREFIX, extra="ignore", frozen=True)

    # Commit policy: flush when any limit is reached (freshness ≈ max_age_s + commit time).
    # 100k records bound what a batch and its commit hold (peak RSS is a target, 512 MB).
    # Each commit writes a file per partition (day x 16 buckets) and a manifest, so larger
    # batches cost less per record. Measured, one worker ingesting 2M trades: 60k 473 MB,
    # 5.4 CPU-s per million from assignment; 100k 490 MB, 4.5; 200k (earlier code) ~600 MB.
    max_records: int = Field(default=100_000, ge=1)
    max_bytes: int = Field(default=64 * 1024 * 1024, ge=1)
    # 0.5 s: a batch commits on a background thread while the next one fills, so records
    # wait max_age_s + one commit (~0.4 s): measured p50 0.9 s / p99 2.0 s at 50k msg/s
    # (1.0 s gave p50 1.5 s / p99 2.9 s), with no loss of throughput.
    max_age_s: float = Field(default=0.5, gt=0)
    # Backpressure: pause every partition while this many raw bytes wait for a commit.
    max_buffered_bytes: int = Field(default=256 * 1024 * 1024, ge=1)
    # librdkafka's prefetch queue (queued.max.messages.kbytes, one queue for all partitions;
    # its real footprint is a few times this): with the buffered batch and Arrow copies it
    # sets the worker's peak RSS. Small is enough with a short fetch backoff (k2.ingest.source):
    # one worker on 2M trades peaked at 467-487 MB with 1 MiB, 489-509 MB with 2 MiB, at the
    # same records/s and CPU.
    consumer_queue_kbytes: int = Field(default=1_024, ge=1_024)
    # Messages per poll: larger chunks amortise per-call costs (decode, dedup) but hold more
    # transient memory; with 100k-record batches, 10k polls keep peak RSS under 512 MB.
    poll_batch: int = Field(default=10_000, ge=1)
    poll_timeout_s: float = Field(default=0.1, gt=0)
    # DLQ budget overrides for this worker; unset, the dataset's `ingest.dlq_budget` in
    # contracts/catalogue.yaml applies.
    dlq_max_ratio: float | None = Field(default=None, ge=0, le=1)
    dlq_window: int | None = Field(default=None, ge=1)
    dlq_min_records: int | None = Field(default=None, ge=1)
    # Identity dedup window (number of identities remembered).
    dedup_window: int = Field(default=1_000_000, ge=0)
    # Plausible event times: not before this epoch (µs), not later than now + skew.
    min_event_time_us: int = 631_152_000_000_000  # 1990-01-01T00:00:00Z
    max_future_skew_s: float = Field(default=86_400.0, ge=0)
    # Retries while a dependency is down: exponential backoff capped at max_backoff_s.
    max_backoff_s: float = Field(default=10.0, gt=0)
    commit_attempts: int = Field(default=20, ge=1)
    group_id_prefix: str = "k2-ingest-"
    # Stable identity (static group membership, k2.ingest.identity): a restarted worker with
    # the same id gets its partitions back without a rebalance. Unset: host name + a slot.
    worker_id: str | None = None
    static_membership: bool = True
    # A static member stopped on purpose (SIGTERM, the end of --max-seconds) leaves its group
    # so the others take its partitions at once (k2.ingest.leave). False keeps them for the
    # session timeout: a planned restart within it then moves nothing at all.
    hand_over_on_stop: bool = True
    # Longer than a group coordinator's failover: when the coordinator's broker dies, the
    # group moves with its `__consumer_offsets` partition once the broker is fenced (9 s by
    # Kafka's default, 9-13 s measured on the cluster profile). A static member whose session
    # times out first rejoins and is fenced by its own instance id, a fatal error in librdkafka
    # (confluentinc/librdkafka#3437): at 10 s a killed controller took the worker down. A
    # restarted worker takes its partitions back at once whatever this is (static
    # membership); only a worker that never returns holds them this long.
    session_timeout_ms: int = Field(default=30_000, ge=1_000)
    max_poll_interval_ms: int = Field(default=300_000, ge=10_000)
    fast_decode: bool = True
    # Arrow on the system allocator, few glibc arenas, freed memory returned after each
    # commit (k2.ingest.memory): peak RSS stays near the live data.
    bounded_native_memory: bool = True
    # Young-generation threshold of the cyclic GC while ingesting (k2.ingest.memory.relax_gc);
    # 0 keeps the interpreter's defaults.
    gc_young_threshold: int = Field(default=100_000, ge=0)
    # Commit on a background thread while the next batch is consumed (one commit in flight).
    commit_in_background: bool = True

    def commit_policy(self) -> CommitPolicy:
        """The flush limits as a value object."""
        return CommitPolicy(self.max_records, self.max_bytes, self.max_age_s)
