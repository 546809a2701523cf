"""K2's Docker engine: use one that answers, else start K2's own dockerd, and undo it after.

Discovery (`DockerEngine.find`) tries, in order: `DOCKER_HOST` when set (a dead one is an
error, never skipped: the user named that engine), the default `/var/run/docker.sock`, then
K2's private engine at `unix:///run/k2-docker/docker.sock`. `ensure` starts the private engine
when none answers: as root only, Debian's `docker.io` installed with apt when
`/usr/sbin/dockerd` is missing, with a data root, exec root, pid file and socket of its own so
it never meets a system Docker.

K2 owns an engine only while its record (`k2-engine.json`: pid and kernel start time) names
that live process; `stop` never signals anything else (an engine started by hand on K2's
socket is used, never stopped). Before starting, a `HostSnapshot` of what dockerd changes is
written beside the record; `stop` compares it with the state after dockerd exited and undoes
the difference.

Measured on this machine (Debian 12, docker.io 20.10.24, iptables 1.8.9 on nf_tables), a
fresh dockerd in an empty network namespace with ip_forward=0, plus one user network:
- `net.ipv4.ip_forward` 0 -> 1 and the filter FORWARD policy ACCEPT -> DROP (dockerd sets
  DROP only when it had to turn forwarding on: with ip_forward already 1 it kept ACCEPT);
- filter: chains DOCKER, DOCKER-USER, DOCKER-ISOLATION-STAGE-1/-2, two FORWARD jumps to them
  and four FORWARD rules per bridge; nat: chain DOCKER, a PREROUTING and an OUTPUT jump to it,
  one MASQUERADE per bridge subnet (172.17.0.0/16 docker0, 172.18.0.0/16 the first br-*);
- nft tables `ip filter` and `ip nat` (iptables-nft creates them on first use);
- bridges docker0 and br-<network id[:12]>.
Mangle, raw, ip6tables and net.bridge.* did not change, and SIGTERM removed none of the above.
`stop` restores ip_forward and the policy, deletes the new rules that name Docker's chains or
bridges (a rule someone else added meanwhile stays), flushes and deletes the new DOCKER*
chains, deletes the new docker0/br-* bridges and the nft tables that were absent before and
hold nothing else. Kernel modules dockerd loads (overlay, br_netfilter) stay; the data root
(images, volumes) is kept. Start to first answer on /_ping: 0.8 s.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol

import docker
from docker.errors import DockerException
from pydantic import BaseModel, ConfigDict, ValidationError
from requests.exceptions import RequestException

from k2.errors import StackError
from k2stack.local import processes
from k2stack.local.install import run_step
from k2stack.local.launcher import LaunchCommand
from k2stack.locking import file_lock

DOCKERD = Path("/usr/sbin/dockerd")
DOCKER_HOST_VAR = "DOCKER_HOST"
DEFAULT_SOCKET_URL = "unix:///var/run/docker.sock"
K2_RUN_DIR = Path("/run/k2-docker")
K2_DATA_ROOT = Path("/var/lib/k2/docker")
K2_DATA_ROOT_VAR = "K2_DOCKER_DATA_ROOT"
K2_LOG_DIR = Path("/var/lib/k2/docker-engine")
PING_TIMEOUT_S = 3
START_TIMEOUT_S = 60.0
# dockerd gives running containers 15 s (`--shutdown-timeout`) after SIGTERM, then stops
# its containerd: twice that before SIGKILL.
STOP_TIMEOUT_S = 30.0
# Per socket read: an image import or build may be silent for minutes while layers commit.
CLIENT_TIMEOUT_S = 300
# The only tables dockerd 20.10 changed here (module docstring).
IPTABLES_TABLES = ("filter", "nat")
# What dockerd adds names its chains or its bridges; anything else is not ours to delete.
_DOCKER_RULE = re.compile(r"DOCKER|\bdocker0\b|\bbr-[0-9a-f]{12}\b")
_DOCKER_BRIDGE = re.compile(r"docker0|br-[0-9a-f]{12}")


def apt_install(package: str) -> None:
    """Install a Debian package, updating apt's lists first when the install fails."""
    argv = ["env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "-q", package]
    try:
        run_step(argv, f"installing {package} from Debian")
    except StackError:
        # A fresh machine (or container) may have no package lists yet.
        run_step(["apt-get", "update", "-q"], "updating Debian package lists")
        run_step(argv, f"installing {package} from Debian")


@dataclass(frozen=True)
class EngineLayout:
    """Where K2's private engine keeps its socket, records, data and log."""

    run_dir: Path = K2_RUN_DIR
    data_root: Path = K2_DATA_ROOT
    log_dir: Path = K2_LOG_DIR

    @classmethod
    def default(cls, env: Mapping[str, str]) -> EngineLayout:
        return cls(data_root=Path(env.get(K2_DATA_ROOT_VAR) or K2_DATA_ROOT))

    @property
    def socket_url(self) -> str:
        return f"unix://{self.run_dir / 'docker.sock'}"

    @property
    def dockerd_pid_file(self) -> Path:
        """dockerd's own pid file (a bare pid): also there when the engine was started by hand."""
        return self.run_dir / "dockerd.pid"

    @property
    def record_file(self) -> Path:
        """K2's record (pid and start time): exists only for an engine K2 started."""
        return self.run_dir / "k2-engine.json"

    @property
    def host_state_file(self) -> Path:
        return self.run_dir / "host-state.json"

    @property
    def log_file(self) -> Path:
        return self.log_dir / "dockerd.log"

    def dockerd_argv(self) -> tuple[str, ...]:
        return (
            str(DOCKERD),
            f"--data-root={self.data_root}",
            f"--exec-root={self.run_dir / 'exec'}",
            f"--pidfile={self.dockerd_pid_file}",
            f"-H={self.socket_url}",
        )


class Host(Protocol):
    """Runs the host commands the engine needs (a fake in unit tests)."""

    @property
    def prefix(self) -> tuple[str, ...]:
        """Put before every command, dockerd included."""
        ...

    def run(self, argv: Sequence[str]) -> str:
        """Run a command; its stdout, or StackError when it fails."""
        ...

    def is_root(self) -> bool: ...


@dataclass(frozen=True)
class SystemHost:
    """This machine. The real-engine tests run a second engine in a network namespace of its
    own by setting `prefix` to `nsenter --net=...`."""

    prefix: tuple[str, ...] = ()

    def run(self, argv: Sequence[str]) -> str:
        full = [*self.prefix, *argv]
        try:
            return subprocess.run(full, check=True, capture_output=True, text=True).stdout
        except subprocess.CalledProcessError as e:
            raise StackError(f"`{shlex.join(full)}` failed: {e.stderr.strip()}") from e
        except OSError as e:
            raise StackError(f"`{shlex.join(full)}` failed: {e}") from e

    def is_root(self) -> bool:
        return os.geteuid() == 0


class HostSnapshot(BaseModel):
    """The host state dockerd changes (what was measured: module docstring)."""

    model_config = ConfigDict(frozen=True)

    ip_forward: str
    iptables: dict[str, list[str]]  # table -> `iptables -t TABLE -S` lines
    bridges: list[str]
    nft_tables: list[str] | None  # `nft list tables` lines; None where nft is missing


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def snapshot(host: Host) -> HostSnapshot:
    """The host's state now, in the terms dockerd changes it."""
    try:
        nft: list[str] | None = _lines(host.run(["nft", "list", "tables"]))
    except StackError:
        nft = None
    links = _lines(host.run(["ip", "-o", "link", "show", "type", "bridge"]))
    return HostSnapshot(
        ip_forward=host.run(["sysctl", "-n", "net.ipv4.ip_forward"]).strip(),
        iptables={t: _lines(host.run(["iptables", "-t", t, "-S"])) for t in IPTABLES_TABLES},
        # `5: docker0: <NO-CARRIER,...> mtu 1500 ...`
        bridges=[line.split(":")[1].strip() for line in links if line.count(":") >= 2],
        nft_tables=nft,
    )


@dataclass(frozen=True)
class RestoreStep:
    what: str
    argv: tuple[str, ...]


def _iptables_steps(
    table: str, before: list[str], after: list[str]
) -> tuple[list[RestoreStep], bool]:
    """Undo dockerd's additions to one table; also whether nothing else was added to it."""
    base = ("iptables", "-t", table)
    known = {line.split()[1] for line in before if line.startswith(("-N ", "-P "))}
    new_chains = [line.split()[1] for line in after if line.startswith("-N ")]
    new_chains = [c for c in new_chains if c not in known]
    docker_chains = [c for c in new_chains if c.startswith("DOCKER")]
    only_docker = len(docker_chains) == len(new_chains)
    steps = []
    for line in (Counter(after) - Counter(before)).elements():
        args = shlex.split(line)
        if args[0] != "-A" or args[1] in docker_chains:
            continue  # a chain's rules go with its flush
        if _DOCKER_RULE.search(line) is None:
            only_docker = False
            continue
        steps.append(RestoreStep(f"{table}: deleted rule {line}", (*base, "-D", *args[1:])))
    steps += [RestoreStep(f"{table}: flushed chain {c}", (*base, "-F", c)) for c in docker_chains]
    # Deleted only after every flush: the isolation chains jump to each other.
    steps += [RestoreStep(f"{table}: deleted chain {c}", (*base, "-X", c)) for c in docker_chains]
    policies = {args[1]: args[2] for args in map(str.split, before) if args[0] == "-P"}
    for args in map(str.split, after):
        if args[0] == "-P" and policies.get(args[1], args[2]) != args[2]:
            old = policies[args[1]]
            steps.append(
                RestoreStep(
                    f"{table}: {args[1]} policy {args[2]} -> {old}", (*base, "-P", args[1], old)
                )
            )
    return steps, only_docker


def restore_plan(before: HostSnapshot, after: HostSnapshot) -> list[RestoreStep]:
    """The commands that undo what dockerd changed between two snapshots, in a working order."""
    steps: list[RestoreStep] = []
    clean_tables: set[str] = set()
    for table in IPTABLES_TABLES:
        table_steps, only_docker = _iptables_steps(
            table, before.iptables.get(table, []), after.iptables.get(table, [])
        )
        steps += table_steps
        if only_docker:
            clean_tables.add(f"table ip {table}")
    for name in after.bridges:
        if name not in before.bridges and _DOCKER_BRIDGE.fullmatch(name):
            steps.append(RestoreStep(f"deleted bridge {name}", ("ip", "link", "delete", name)))
    if before.nft_tables is not None and after.nft_tables is not None:
        for line in after.nft_tables:
            if line not in before.nft_tables and line in clean_tables:
                family_and_name = tuple(line.split()[1:])
                steps.append(
                    RestoreStep(f"deleted nft {line}", ("nft", "delete", "table", *family_and_name))
                )
    if after.ip_forward != before.ip_forward:
        setting = f"net.ipv4.ip_forward={before.ip_forward}"
        steps.append(RestoreStep(f"{setting} (was {after.ip_forward})", ("sysctl", "-w", setting)))
    return steps


class EngineSource(StrEnum):
    DOCKER_HOST = "DOCKER_HOST"
    DEFAULT = "the default socket"
    K2 = "K2's private engine"


@dataclass(frozen=True)
class Engine:
    """A Docker engine: where it listens, how it was found, whether K2 started it."""

    url: str
    source: EngineSource
    started_by_k2: bool = False

    def client(self, timeout_s: int = CLIENT_TIMEOUT_S) -> docker.DockerClient:
        try:
            if self.source is EngineSource.DOCKER_HOST:
                # from_env also applies DOCKER_TLS_VERIFY and DOCKER_CERT_PATH (remote engines).
                return docker.DockerClient.from_env(timeout=timeout_s)
            return docker.DockerClient(base_url=self.url, timeout=timeout_s)
        except (DockerException, RequestException) as e:
            raise StackError(f"cannot reach the Docker engine at {self.url}: {e}") from e


def ping(engine: Engine) -> str | None:
    """None when `engine` answers /_ping, else why not (a short phrase, for error messages)."""
    if engine.url.startswith("unix://"):
        socket = Path(engine.url.removeprefix("unix://"))
        if not socket.exists():
            return "no socket"
        if not os.access(socket, os.R_OK | os.W_OK):
            return "permission denied"
    try:
        client = engine.client(timeout_s=PING_TIMEOUT_S)
        try:
            client.ping()
        finally:
            client.close()
    except (StackError, DockerException, RequestException) as e:
        return _root_cause(e)
    return None


def _root_cause(error: BaseException) -> str:
    """The innermost exception's text (`[Errno 111] Connection refused`): docker-py wraps it in
    three layers of messages that repeat the URL."""
    for _ in range(10):  # a chain is a few links long; this bounds a cyclic one
        inner = error.__cause__ or error.__context__
        if inner is None:
            break
        error = inner
    return str(error)[:200] or type(error).__name__


@dataclass(frozen=True)
class EngineStatus:
    engine: Engine
    pid: int | None  # known for K2's private engine only
    version: str
    running_containers: int


@dataclass(frozen=True)
class StopReport:
    stopped: bool
    detail: str
    restored: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()


class DockerEngine:
    """Finds, starts, reports on and stops the Docker engine K2 uses."""

    def __init__(
        self,
        layout: EngineLayout | None = None,
        host: Host | None = None,
        env: Mapping[str, str] | None = None,
        probe: Callable[[Engine], str | None] = ping,
    ) -> None:
        self.env = os.environ if env is None else env
        self.layout = layout or EngineLayout.default(self.env)
        self.host: Host = host or SystemHost()
        self._probe = probe

    def _private(self) -> Engine:
        started = processes.running(self.layout.record_file) is not None
        return Engine(self.layout.socket_url, EngineSource.K2, started_by_k2=started)

    def _discover(self) -> tuple[Engine | None, list[str]]:
        """The first engine that answers, and why each one tried before it did not."""
        docker_host = self.env.get(DOCKER_HOST_VAR)
        if docker_host and docker_host != self.layout.socket_url:
            engine = Engine(docker_host, EngineSource.DOCKER_HOST)
            reason = self._probe(engine)
            if reason is not None:
                raise StackError(
                    f"{DOCKER_HOST_VAR}={docker_host} does not answer ({reason}): "
                    f"start that engine, or unset {DOCKER_HOST_VAR}"
                )
            return engine, []
        # DOCKER_HOST naming K2's own socket asks for K2's engine: found or started as usual.
        candidates = [self._private()]
        if not docker_host:
            candidates.insert(0, Engine(DEFAULT_SOCKET_URL, EngineSource.DEFAULT))
        tried: list[str] = []
        for engine in candidates:
            reason = self._probe(engine)
            if reason is None:
                return engine, tried
            tried.append(f"{engine.url}: {reason}")
        return None, tried

    def find(self) -> Engine | None:
        """The engine that answers first (module docstring), or None; starts nothing.

        Raises StackError when DOCKER_HOST is set and does not answer.
        """
        return self._discover()[0]

    def ensure(self) -> Engine:
        """An engine that answers: the first found, else K2's own, started now."""
        engine, tried = self._discover()
        return engine if engine is not None else self.start(tried)

    def client(self) -> docker.DockerClient:
        return self.ensure().client()

    def start(self, tried: Sequence[str] = ()) -> Engine:
        """Start K2's private dockerd (root only) and wait until it answers."""
        if not self.host.is_root():
            why = "; ".join(tried) or "none found"
            raise StackError(
                f"no Docker engine answers ({why}) and starting K2's own needs root:\n"
                "start Docker (or join the docker group), or run as root"
            )
        layout = self.layout
        layout.run_dir.mkdir(parents=True, exist_ok=True)
        # Several processes (xdist workers) may find no engine at once: one starts it and
        # the others, waiting here, then find it answering.
        with file_lock(layout.run_dir / "start.lock"):
            if self._probe(self._private()) is None:
                return self._private()
            if not DOCKERD.exists():
                apt_install("docker.io")
            if processes.running(layout.record_file) is None:
                self._spawn()
            return self._wait_until_up()

    def _spawn(self) -> None:
        layout = self.layout
        # A K2 engine that died without `stop` already changed the host: the snapshot taken
        # before it is the true one, so an existing file is kept.
        if not layout.host_state_file.exists():
            layout.host_state_file.write_text(snapshot(self.host).model_dump_json(indent=1))
        # /usr/sbin holds iptables and runc, which dockerd finds on PATH.
        path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
        command = LaunchCommand(
            argv=(*self.host.prefix, *layout.dockerd_argv()), env={"PATH": path}
        )
        processes.start(command, layout.log_file, layout.record_file)

    def _wait_until_up(self) -> Engine:
        engine = Engine(self.layout.socket_url, EngineSource.K2, started_by_k2=True)
        deadline = time.monotonic() + START_TIMEOUT_S
        while (reason := self._probe(engine)) is not None:
            if processes.running(self.layout.record_file) is None:
                raise StackError(f"dockerd exited while starting; {self._log_tail()}")
            if time.monotonic() > deadline:
                raise StackError(
                    f"dockerd did not answer within {START_TIMEOUT_S:.0f} s ({reason}); {self._log_tail()}"
                )
            time.sleep(0.25)
        return engine

    def _log_tail(self, lines: int = 8) -> str:
        try:
            tail = self.layout.log_file.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            tail = []
        return "\n".join([f"log {self.layout.log_file}:", *tail])

    def status(self) -> EngineStatus:
        engine, tried = self._discover()
        if engine is None:
            raise StackError(
                f"no Docker engine answers ({'; '.join(tried)}): `k2-stack docker engine up` starts K2's own"
            )
        client = engine.client(timeout_s=PING_TIMEOUT_S * 10)
        try:
            version = str(client.version().get("Version", "unknown"))
            running = len(client.containers.list())
        except (DockerException, RequestException) as e:
            raise StackError(f"the Docker engine at {engine.url} failed to report: {e}") from e
        finally:
            client.close()
        return EngineStatus(engine, self._pid(engine), version, running)

    def _pid(self, engine: Engine) -> int | None:
        if engine.source is not EngineSource.K2:
            return None
        recorded = processes.running(self.layout.record_file)
        if recorded is not None:
            return recorded.pid
        try:
            return int(self.layout.dockerd_pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def stop(self) -> StopReport:
        """Stop K2's private engine if K2 started it, and undo what it changed on the host."""
        layout = self.layout
        if not layout.record_file.exists():
            return StopReport(
                False, f"the engine at {layout.socket_url} was not started by K2: left alone"
            )
        proc = processes.running(layout.record_file)
        if proc is not None:
            self._terminate(proc)
        restored: list[str] = []
        failed: list[str] = []
        try:
            before = HostSnapshot.model_validate_json(layout.host_state_file.read_text())
        except (OSError, ValidationError) as e:
            failed.append(f"no usable record of the host before dockerd ({e}): nothing restored")
        else:
            for step in restore_plan(before, snapshot(self.host)):
                try:
                    self.host.run(step.argv)
                    restored.append(step.what)
                except StackError as e:
                    failed.append(f"{step.what}: {e}")
        layout.host_state_file.unlink(missing_ok=True)
        layout.record_file.unlink(missing_ok=True)
        detail = "stopped K2's engine" if proc is not None else "K2's engine had already exited"
        return StopReport(proc is not None, detail, tuple(restored), tuple(failed))

    def _terminate(self, proc: processes.RunningProcess) -> None:
        # SIGTERM to dockerd alone, not its process group (processes.stop's way): dockerd
        # stops its containers and then its containerd; containerd killed at the same moment
        # would leave that shutdown hanging until the timeout.
        os.kill(proc.pid, signal.SIGTERM)
        if self._exited_within(STOP_TIMEOUT_S):
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # containerd with it
        if not self._exited_within(5.0):
            raise StackError(f"dockerd (pid {proc.pid}) is still running after SIGKILL")

    def _exited_within(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while processes.running(self.layout.record_file) is not None:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True
