"""Wires one ingest worker from endpoints, settings and the catalogue."""

from __future__ import annotations

import os
import socket

from prometheus_client import CollectorRegistry

from k2.catalog import load_catalog
from k2.contracts.catalogue import Catalogue, load_catalogue
from k2.contracts.schemas import latest_schema
from k2.ingest.config import IngestSettings
from k2.ingest.decoder import Decoder
from k2.ingest.dlq import DlqWriter
from k2.ingest.identity import worker_identity
from k2.ingest.memory import bound_native_memory
from k2.ingest.metrics import IngestMetrics
from k2.ingest.schemas import RegistrySchemaSource, WriterSchemas
from k2.ingest.sink import IcebergSink
from k2.ingest.source import KafkaSource
from k2.ingest.worker import IngestWorker
from k2.settings import CatalogPrincipal, Endpoints


def catalogue_for(prefix: str | None) -> Catalogue:
    """The catalogue, with `prefix` applied when given (tests)."""
    catalogue = load_catalogue()
    return catalogue.with_prefix(prefix) if prefix else catalogue


def build_worker(
    table: str,
    endpoints: Endpoints,
    settings: IngestSettings,
    *,
    prefix: str | None = None,
    registry: CollectorRegistry | None = None,
    group_id: str | None = None,
) -> IngestWorker:
    """An ingest worker for dataset `table` (`trades`, `quotes`, `reference_data`)."""
    if settings.bounded_native_memory:
        bound_native_memory()
    dataset = catalogue_for(prefix).dataset(table)
    expected = latest_schema(dataset.schema_name).full_name
    schemas = WriterSchemas(RegistrySchemaSource(endpoints.schema_registry_url), expected)
    try:
        writer_id = f"{socket.gethostname()}:{os.getpid()}"
        sink = IcebergSink(
            load_catalog(endpoints, CatalogPrincipal.INGEST),
            dataset.table_identifier,
            writer_id,
            settings.commit_attempts,
            unique=(dataset.ingest_spec().identity,),
        )
        metrics = IngestMetrics(dataset.name, registry)
        group = group_id or settings.group_id_prefix + dataset.topic.name
        identity = (
            worker_identity(group, settings.worker_id) if settings.static_membership else None
        )
        source = KafkaSource(
            endpoints.kafka_bootstrap_servers,
            group,
            dataset.topic.name,
            session_timeout_ms=settings.session_timeout_ms,
            max_poll_interval_ms=settings.max_poll_interval_ms,
            queued_max_kbytes=settings.consumer_queue_kbytes,
            on_lag=metrics.lag,
            identity=identity,
        )
        worker = IngestWorker(
            dataset,
            source=source,
            decoder=Decoder(schemas, fast=settings.fast_decode),
            sink=sink,
            dlq=DlqWriter(endpoints.kafka_bootstrap_servers, dataset.dlq_topic),
            metrics=metrics,
            settings=settings,
        )
    except BaseException:
        schemas.close()  # the worker closes it when it stops; nobody will if it never starts
        raise
    # The consumer has subscribed: its group join runs in librdkafka's threads from here on,
    # while the table loads (the first assignment reads its offsets).
    sink.preload()
    return worker
