"""Parquet data files for one commit, written before (and kept across) commit attempts.

pyiceberg's `Transaction.append` writes the files inside the commit, so a commit conflict
rewrote every Parquet file, and two writers of one table conflicted whenever the other one
committed during the whole write. Writing the files first keeps the conflict window to the
metadata commit alone, and a retry re-uses the files (they are immutable and referenced only
once a commit lands; a batch dropped for good leaves orphans, as any failed Iceberg write).

Splitting by the partition spec: pyiceberg filters the whole table once per partition value
(16 buckets x days: 16+ full scans per commit); here one group-by yields every partition's
row numbers (in arrival order) and one `take` per partition copies only its rows.

Uses pyiceberg's writer internals (`write_file`, `WriteTask`, `bin_pack_arrow_table`), the
same ones `Transaction.append` uses, pinned by requirements.lock.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa
from pyiceberg.io import FileIO
from pyiceberg.io.pyarrow import bin_pack_arrow_table, pyarrow_to_schema, write_file
from pyiceberg.manifest import DataFile
from pyiceberg.partitioning import PartitionFieldValue, PartitionKey
from pyiceberg.table import TableProperties, WriteTask
from pyiceberg.table.metadata import TableMetadata
from pyiceberg.utils.properties import property_as_int

from k2.ingest.source import TopicPartitionKey

_ROW = "__k2_row"
# Files encoded and uploaded at a time: partitions are taken and written a few at a time, so
# a commit holds a few partitions' copies and Parquet buffers, not the whole batch's.
FILES_AT_ONCE = 2


@dataclass(frozen=True)
class WrittenFiles:
    """Data files holding the rows of `partitions` (Kafka), written under spec `spec_id`."""

    partitions: frozenset[TopicPartitionKey]
    spec_id: int
    files: list[DataFile]
    rows: int

    def reusable(self, partitions: frozenset[TopicPartitionKey], spec_id: int) -> bool:
        """Whether these files still hold exactly what a commit of `partitions` must add."""
        return self.partitions == partitions and self.spec_id == spec_id


def write_data_files(
    metadata: TableMetadata, io: FileIO, rows: pa.Table, partitions: frozenset[TopicPartitionKey]
) -> WrittenFiles:
    """Write `rows` (already aligned to the table's Arrow schema) as data files."""
    spec = metadata.spec()
    if rows.num_rows == 0:
        return WrittenFiles(partitions, spec.spec_id, [], 0)
    schema = metadata.schema()
    task_schema = pyarrow_to_schema(
        rows.schema, name_mapping=schema.name_mapping, format_version=metadata.format_version
    )
    target_size = (
        property_as_int(metadata.properties, TableProperties.WRITE_TARGET_FILE_SIZE_BYTES)
        or TableProperties.WRITE_TARGET_FILE_SIZE_BYTES_DEFAULT
    )
    write_uuid = uuid.uuid4()
    files: list[DataFile] = []
    tasks: list[WriteTask] = []
    for key, part in _parts(metadata, rows):
        for batches in bin_pack_arrow_table(part, target_size):
            tasks.append(
                WriteTask(
                    write_uuid=write_uuid,
                    task_id=len(files) + len(tasks),
                    record_batches=batches,
                    partition_key=key,
                    schema=task_schema,
                )
            )
        if len(tasks) >= FILES_AT_ONCE:
            files.extend(write_file(io=io, table_metadata=metadata, tasks=iter(tasks)))
            tasks = []
    files.extend(write_file(io=io, table_metadata=metadata, tasks=iter(tasks)))
    return WrittenFiles(partitions, spec.spec_id, files, rows.num_rows)


def _parts(
    metadata: TableMetadata, rows: pa.Table
) -> Iterator[tuple[PartitionKey | None, pa.Table]]:
    """`rows` split by the partition spec, one partition's copy at a time."""
    spec, schema = metadata.spec(), metadata.schema()
    if spec.is_unpartitioned():
        yield None, rows
        return
    # No combine_chunks first: Arrow 21 takes from chunked columns as fast as from
    # contiguous ones (measured), and a combined copy was a whole batch more at peak.
    keys = {}
    for index, field in enumerate(spec.fields):
        source = schema.find_field(field.source_id)
        column = rows.column(schema.find_column_name(field.source_id) or source.name)
        keys[f"p{index}"] = field.transform.pyarrow_transform(source.field_type)(column)
    keys[_ROW] = pa.array(range(rows.num_rows), type=pa.int64())
    names = [f"p{i}" for i in range(len(spec.fields))]
    # use_threads=False keeps each group's row numbers in arrival (Kafka) order.
    grouped = pa.table(keys).group_by(names, use_threads=False).aggregate([(_ROW, "list")])
    values = [grouped.column(name).to_pylist() for name in names]
    row_lists = grouped.column(f"{_ROW}_list")
    for group in range(grouped.num_rows):
        key = PartitionKey(
            field_values=[
                PartitionFieldValue(field=field, value=values[i][group])
                for i, field in enumerate(spec.fields)
            ],
            partition_spec=spec,
            schema=schema,
        )
        indices = row_lists[group].values
        part = rows if len(indices) == rows.num_rows else rows.take(indices)
        yield key, part
