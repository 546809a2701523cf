"""Ingest: Kafka → Iceberg with exactly-once results, a DLQ, schema evolution and metrics.

The data flow reads as its modules: `source` (consume) → `decoder` (wire format + Avro) →
`validator` → `dedup`/`sequence` → `batcher` (Arrow) → `dlq` (durable first) → `sink`
(Iceberg append + offsets in one commit), paced by `commit_policy`; `worker` is the loop.
"""
