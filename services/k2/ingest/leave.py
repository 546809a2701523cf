"""A static member that stops on purpose leaves its group, so its partitions move at once.

Static membership (k2.ingest.identity) lets a worker killed with -9 take its partitions back
the moment it restarts. Its price: librdkafka never sends a static member's LeaveGroup on
close (KIP-345 keeps a static member's partitions for its whole session, 30 s in K2, so that
a rolling restart moves nothing), so a worker stopped with SIGTERM for good held its
partitions, unread, for those 30 s (measured: ~28 s before the others committed them).

KIP-345's answer is the admin removal of a member by its `group.instance.id` (LeaveGroup v3+).
librdkafka and confluent-kafka have no such call; kafka-python's `remove_group_members` sends
exactly that request, so K2 uses it rather than hand-writing a Kafka protocol client. The
worker calls it after its consumer closed (its final revoke flushed and committed): the
coordinator then rebalances and the remaining members take the partitions within a heartbeat.
Best effort by design: if the removal fails, the session timeout still frees the partitions.
"""

from __future__ import annotations

import logging
import socket
import time
from dataclasses import dataclass

from k2 import kafka as k2_kafka

log = logging.getLogger(__name__)

TIMEOUT_MS = 5_000


@dataclass(frozen=True)
class Departure:
    """How leaving went: `left` False means the session timeout frees the partitions."""

    left: bool
    seconds: float
    detail: str


def leave_group(
    bootstrap_servers: str, group_id: str, instance_id: str, member_id: str
) -> Departure:
    """Remove static member `instance_id` from `group_id`, if `member_id` still holds it.

    With the member id given, the coordinator refuses (FENCED_INSTANCE_ID) when another
    process has taken the instance id over since: a restart is never kicked out by the
    process it replaced. Never raises.
    """
    # Imported here, not at the top: kafka-python loads its protocol schemas on import
    # (~0.2 s), which would delay every worker's start, the moment restarts are measured by.
    from kafka.admin import KafkaAdminClient, MemberToRemove  # type: ignore[import-untyped]
    from kafka.errors import (  # type: ignore[import-untyped]
        FencedInstanceIdError,
        KafkaError,
        UnknownMemberIdError,
    )

    class Admin(KafkaAdminClient):  # type: ignore[misc]
        """kafka-python 3.0.12 starts its IO thread before bootstrapping and leaves it running
        when bootstrap fails: this one stops it."""

        def __init__(self, **configs: object) -> None:
            try:
                super().__init__(**configs)
            except BaseException:
                if hasattr(self, "_net"):
                    self._closed = False
                    self.close()
                raise

    began = time.monotonic()
    if not any(_reachable(server) for server in bootstrap_servers.split(",")):
        # Checked first because kafka-python also leaves the sockets of refused bootstrap
        # connections to the garbage collector (ResourceWarnings in whatever process runs
        # the worker, an error under pytest).
        return _done(began, False, f"no broker reachable at {bootstrap_servers}")
    try:
        admin = Admin(
            bootstrap_servers=bootstrap_servers,
            client_id=f"{group_id}-leave",
            request_timeout_ms=TIMEOUT_MS,
            bootstrap_timeout_ms=TIMEOUT_MS,
            **k2_kafka.python_security_config(),
        )
    except (KafkaError, OSError) as e:
        return _done(began, False, f"no admin connection: {e!r}")
    try:
        member = MemberToRemove(
            member_id=member_id, group_instance_id=instance_id, reason="k2 worker stopped"
        )
        results = admin.remove_group_members(group_id, [member])
    except (KafkaError, OSError) as e:
        return _done(began, False, f"LeaveGroup failed: {e!r}")
    finally:
        admin.close()
    errors = [error for error in results.values() if error.errno != 0]
    if not errors:
        return _done(began, True, "left")
    if all(error in (UnknownMemberIdError, FencedInstanceIdError) for error in errors):
        # Not a member any more (its session expired, or a newer process took the id over):
        # there is nothing of ours to hand over.
        return _done(began, True, "was no longer a member")
    return _done(began, False, f"LeaveGroup refused: {[e.__name__ for e in errors]}")


def _reachable(server: str) -> bool:
    host, _, port = server.strip().rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=1.0).close()
    except (OSError, ValueError):
        return False
    return True


def _done(began: float, left: bool, detail: str) -> Departure:
    departure = Departure(left, round(time.monotonic() - began, 3), detail)
    if not left:
        log.warning("static member did not leave its group", extra={"k2": {"detail": detail}})
    return departure
