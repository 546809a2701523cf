"""K2's contracts: Avro schemas, the topic/table catalogue and the Avro→Iceberg/Arrow mapping.

Everything here is read from `contracts/` at the repository root (override with
`K2_CONTRACTS_DIR`), the single source of truth for what enters the platform.
"""
