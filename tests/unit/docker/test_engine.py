"""The engine's decisions without an engine: discovery order, refusals, the restore plan,
and the Debian mirror the base image is built from."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from k2.errors import StackError
from k2stack.docker.base_image import debian_mirror
from k2stack.docker.engine import (
    DEFAULT_SOCKET_URL,
    DockerEngine,
    Engine,
    EngineLayout,
    EngineSource,
    HostSnapshot,
    restore_plan,
    snapshot,
)

BRIDGE = "br-f8b92d7e3f24"

# Measured: a fresh dockerd 20.10.24 (iptables-nft) in an empty network namespace with
# ip_forward=0, before it started and after SIGTERM, with one user network created.
BEFORE = HostSnapshot(
    ip_forward="0",
    iptables={
        "filter": ["-P INPUT ACCEPT", "-P FORWARD ACCEPT", "-P OUTPUT ACCEPT"],
        "nat": [
            "-P PREROUTING ACCEPT",
            "-P INPUT ACCEPT",
            "-P OUTPUT ACCEPT",
            "-P POSTROUTING ACCEPT",
        ],
    },
    bridges=[],
    nft_tables=[],
)
AFTER = HostSnapshot(
    ip_forward="1",
    iptables={
        "filter": [
            "-P INPUT ACCEPT",
            "-P FORWARD DROP",
            "-P OUTPUT ACCEPT",
            "-N DOCKER",
            "-N DOCKER-ISOLATION-STAGE-1",
            "-N DOCKER-ISOLATION-STAGE-2",
            "-N DOCKER-USER",
            "-A FORWARD -j DOCKER-USER",
            "-A FORWARD -j DOCKER-ISOLATION-STAGE-1",
            f"-A FORWARD -o {BRIDGE} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
            f"-A FORWARD -o {BRIDGE} -j DOCKER",
            f"-A FORWARD -i {BRIDGE} ! -o {BRIDGE} -j ACCEPT",
            f"-A FORWARD -i {BRIDGE} -o {BRIDGE} -j ACCEPT",
            "-A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
            "-A FORWARD -o docker0 -j DOCKER",
            "-A FORWARD -i docker0 ! -o docker0 -j ACCEPT",
            "-A FORWARD -i docker0 -o docker0 -j ACCEPT",
            f"-A DOCKER-ISOLATION-STAGE-1 -i {BRIDGE} ! -o {BRIDGE} -j DOCKER-ISOLATION-STAGE-2",
            "-A DOCKER-ISOLATION-STAGE-1 -i docker0 ! -o docker0 -j DOCKER-ISOLATION-STAGE-2",
            "-A DOCKER-ISOLATION-STAGE-1 -j RETURN",
            f"-A DOCKER-ISOLATION-STAGE-2 -o {BRIDGE} -j DROP",
            "-A DOCKER-ISOLATION-STAGE-2 -o docker0 -j DROP",
            "-A DOCKER-ISOLATION-STAGE-2 -j RETURN",
            "-A DOCKER-USER -j RETURN",
        ],
        "nat": [
            "-P PREROUTING ACCEPT",
            "-P INPUT ACCEPT",
            "-P OUTPUT ACCEPT",
            "-P POSTROUTING ACCEPT",
            "-N DOCKER",
            "-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER",
            "-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER",
            f"-A POSTROUTING -s 172.18.0.0/16 ! -o {BRIDGE} -j MASQUERADE",
            "-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE",
            f"-A DOCKER -i {BRIDGE} -j RETURN",
            "-A DOCKER -i docker0 -j RETURN",
        ],
    },
    bridges=["docker0", BRIDGE],
    nft_tables=["table ip nat", "table ip filter"],
)
FILTER_CHAINS = ["DOCKER", "DOCKER-ISOLATION-STAGE-1", "DOCKER-ISOLATION-STAGE-2", "DOCKER-USER"]


@dataclass
class FakeHost:
    """Answers host commands from a table and records every command run."""

    root: bool = True
    outputs: dict[tuple[str, ...], str] = field(default_factory=dict)
    calls: list[tuple[str, ...]] = field(default_factory=list)
    prefix: tuple[str, ...] = ()

    def run(self, argv: Sequence[str]) -> str:
        self.calls.append(tuple(argv))
        return self.outputs.get(tuple(argv), "")

    def is_root(self) -> bool:
        return self.root


@dataclass
class FakeProbe:
    """Engines that answer, by URL; records the order engines were probed in."""

    answering: set[str] = field(default_factory=set)
    probed: list[str] = field(default_factory=list)

    def __call__(self, engine: Engine) -> str | None:
        self.probed.append(engine.url)
        return None if engine.url in self.answering else "no socket"


def _engine(
    tmp_path: Path,
    probe: FakeProbe,
    env: dict[str, str] | None = None,
    host: FakeHost | None = None,
) -> DockerEngine:
    layout = EngineLayout(run_dir=tmp_path / "run", data_root=tmp_path / "data", log_dir=tmp_path)
    return DockerEngine(layout, host or FakeHost(), env or {}, probe)


def test_docker_host_that_does_not_answer_is_an_error_not_skipped(tmp_path: Path) -> None:
    probe = FakeProbe(answering={DEFAULT_SOCKET_URL})
    engines = _engine(tmp_path, probe, env={"DOCKER_HOST": "tcp://10.0.0.9:2375"})
    with pytest.raises(StackError, match=r"DOCKER_HOST=tcp://10.0.0.9:2375 does not answer"):
        engines.ensure()
    assert probe.probed == ["tcp://10.0.0.9:2375"]


def test_docker_host_that_answers_comes_first(tmp_path: Path) -> None:
    probe = FakeProbe(answering={"tcp://10.0.0.9:2375", DEFAULT_SOCKET_URL})
    engine = _engine(tmp_path, probe, env={"DOCKER_HOST": "tcp://10.0.0.9:2375"}).ensure()
    assert (engine.url, engine.source) == ("tcp://10.0.0.9:2375", EngineSource.DOCKER_HOST)
    assert probe.probed == ["tcp://10.0.0.9:2375"]


def test_default_socket_before_k2s_own(tmp_path: Path) -> None:
    engines = _engine(tmp_path, FakeProbe())
    k2_url = engines.layout.socket_url
    probe = FakeProbe(answering={DEFAULT_SOCKET_URL, k2_url})
    assert _engine(tmp_path, probe).ensure().source is EngineSource.DEFAULT
    probe = FakeProbe(answering={k2_url})
    engine = _engine(tmp_path, probe).ensure()
    assert (engine.url, engine.source, engine.started_by_k2) == (k2_url, EngineSource.K2, False)
    assert probe.probed == [DEFAULT_SOCKET_URL, k2_url]


def test_docker_host_naming_k2s_socket_means_k2s_engine(tmp_path: Path) -> None:
    k2_url = _engine(tmp_path, FakeProbe()).layout.socket_url
    probe = FakeProbe(answering={k2_url, DEFAULT_SOCKET_URL})
    engine = _engine(tmp_path, probe, env={"DOCKER_HOST": k2_url}).ensure()
    assert engine.source is EngineSource.K2
    assert probe.probed == [k2_url]


def test_no_engine_and_not_root_says_what_to_do_and_starts_nothing(tmp_path: Path) -> None:
    host = FakeHost(root=False)
    engines = _engine(tmp_path, FakeProbe(), host=host)
    with pytest.raises(StackError) as raised:
        engines.ensure()
    message = str(raised.value)
    assert "/var/run/docker.sock: no socket" in message
    assert "start Docker (or join the docker group), or run as root" in message
    assert len(message.splitlines()) == 2
    assert host.calls == []
    assert not engines.layout.run_dir.exists()


def test_status_without_an_engine_points_at_up(tmp_path: Path) -> None:
    with pytest.raises(StackError, match="k2-stack docker engine up"):
        _engine(tmp_path, FakeProbe()).status()


def test_restore_plan_undoes_what_dockerd_changed() -> None:
    steps = [step.argv for step in restore_plan(BEFORE, AFTER)]
    filter_rules = [s for s in steps if s[:4] == ("iptables", "-t", "filter", "-D")]
    nat_rules = [s for s in steps if s[:4] == ("iptables", "-t", "nat", "-D")]
    assert len(filter_rules) == 10  # two jumps, four rules per bridge
    assert ("iptables", "-t", "filter", "-D", "FORWARD", "-j", "DOCKER-USER") in filter_rules
    assert len(nat_rules) == 4  # two jumps to DOCKER, a MASQUERADE per bridge
    flushes = [("iptables", "-t", "filter", "-F", c) for c in FILTER_CHAINS]
    deletes = [("iptables", "-t", "filter", "-X", c) for c in FILTER_CHAINS]
    # A chain is deleted only after every jump into it is gone.
    assert steps.index(flushes[0]) > max(steps.index(r) for r in filter_rules)
    assert steps.index(deletes[0]) > max(steps.index(f) for f in flushes)
    assert ("iptables", "-t", "filter", "-P", "FORWARD", "ACCEPT") in steps
    assert ("iptables", "-t", "nat", "-X", "DOCKER") in steps
    assert steps[-5:] == [
        ("ip", "link", "delete", "docker0"),
        ("ip", "link", "delete", BRIDGE),
        ("nft", "delete", "table", "ip", "nat"),
        ("nft", "delete", "table", "ip", "filter"),
        ("sysctl", "-w", "net.ipv4.ip_forward=0"),
    ]


def test_restore_plan_leaves_what_others_added_and_what_was_there() -> None:
    user_rule = "-A FORWARD -s 10.9.0.0/16 -j ACCEPT"
    after = AFTER.model_copy(
        update={
            "iptables": {**AFTER.iptables, "filter": [*AFTER.iptables["filter"], user_rule]},
            "bridges": [*AFTER.bridges, "lxcbr0"],
        }
    )
    steps = [step.argv for step in restore_plan(BEFORE, after)]
    assert not any("10.9.0.0/16" in step for step in steps)
    assert ("ip", "link", "delete", "lxcbr0") not in steps
    # The filter table now holds a rule that is not Docker's: the table stays.
    assert ("nft", "delete", "table", "ip", "filter") not in steps
    assert ("nft", "delete", "table", "ip", "nat") in steps
    assert restore_plan(AFTER, AFTER) == []


def test_restore_plan_keeps_forwarding_dockerd_found_on() -> None:
    before = BEFORE.model_copy(update={"ip_forward": "1"})
    after = AFTER.model_copy(
        update={
            "iptables": {
                **AFTER.iptables,
                "filter": ["-P FORWARD ACCEPT", *AFTER.iptables["filter"][3:]],
            }
        }
    )
    steps = [step.argv for step in restore_plan(before, after)]
    assert not any(step[0] == "sysctl" or "-P" in step for step in steps)


def _snapshot_host(state: HostSnapshot) -> FakeHost:
    outputs = {
        ("sysctl", "-n", "net.ipv4.ip_forward"): state.ip_forward + "\n",
        ("nft", "list", "tables"): "\n".join(state.nft_tables or []),
        ("ip", "-o", "link", "show", "type", "bridge"): "".join(
            f"{i + 5}: {name}: <NO-CARRIER,BROADCAST,MULTICAST,UP> mtu 1500 qdisc noqueue\\    link/ether\n"
            for i, name in enumerate(state.bridges)
        ),
    }
    for table, lines in state.iptables.items():
        outputs[("iptables", "-t", table, "-S")] = "\n".join(lines) + "\n"
    return FakeHost(outputs=outputs)


def test_snapshot_reads_the_host() -> None:
    assert snapshot(_snapshot_host(AFTER)) == AFTER


def test_stop_leaves_an_engine_k2_did_not_start(tmp_path: Path) -> None:
    host = FakeHost()
    report = _engine(tmp_path, FakeProbe(), host=host).stop()
    assert not report.stopped
    assert "not started by K2" in report.detail
    assert host.calls == []


def test_stop_after_k2s_engine_died_still_restores_the_host(tmp_path: Path) -> None:
    host = _snapshot_host(AFTER)
    engines = _engine(tmp_path, FakeProbe(), host=host)
    layout = engines.layout
    layout.run_dir.mkdir(parents=True)
    # A pid above the kernel's pid_max: no such process.
    layout.record_file.write_text(json.dumps({"pid": 4_194_304 + 17, "start_ticks": 1}))
    layout.host_state_file.write_text(BEFORE.model_dump_json())
    report = engines.stop()
    assert not report.stopped
    assert report.failed == ()
    assert "net.ipv4.ip_forward=0 (was 1)" in report.restored
    assert "deleted bridge docker0" in report.restored
    assert host.calls[-1] == ("sysctl", "-w", "net.ipv4.ip_forward=0")
    assert not layout.record_file.exists()
    assert not layout.host_state_file.exists()


def _apt_dir(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / "apt" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    (tmp_path / "apt" / "sources.list.d").mkdir(parents=True, exist_ok=True)
    return tmp_path / "apt"


def test_mirror_from_a_one_line_sources_list(tmp_path: Path) -> None:
    apt = _apt_dir(
        tmp_path,
        {
            "sources.list": """\
                # deb http://old.example/debian bookworm main
                deb-src http://src.example/debian bookworm main
                deb [arch=amd64 signed-by=/usr/share/keyrings/x.gpg] http://ftp.de.debian.org/debian/ bookworm main contrib
                deb http://security.debian.org/debian-security bookworm-security main
            """,
        },
    )
    assert debian_mirror(apt) == "http://ftp.de.debian.org/debian"


def test_mirror_from_deb822_sources(tmp_path: Path) -> None:
    apt = _apt_dir(
        tmp_path,
        {
            "sources.list.d/debian.sources": """\
                Types: deb
                URIs: http://disabled.example/debian
                Suites: bookworm
                Components: main
                Enabled: no

                Types: deb deb-src
                # http://snapshot.debian.org/archive/debian/20250520T000000Z
                URIs: https://mirror.example/debian/
                 http://deb.debian.org/debian
                Suites: bookworm bookworm-updates
                Components: main
                Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
            """,
            "sources.list.d/nodesource.sources.disabled-by-farm": """\
                Types: deb
                URIs: https://other.example/debian
                Suites: bookworm
                Components: main
            """,
        },
    )
    assert debian_mirror(apt) == "https://mirror.example/debian"


def test_sources_list_comes_before_its_directory(tmp_path: Path) -> None:
    apt = _apt_dir(
        tmp_path,
        {
            "sources.list": "deb http://first.example/debian bookworm main\n",
            "sources.list.d/a.sources": "Types: deb\nURIs: http://second.example/debian\nSuites: bookworm\nComponents: main\n",
        },
    )
    assert debian_mirror(apt) == "http://first.example/debian"


def test_no_bookworm_main_mirror_is_a_clear_error(tmp_path: Path) -> None:
    apt = _apt_dir(
        tmp_path,
        {
            "sources.list": "deb http://deb.debian.org/debian trixie main\ndeb file:/srv/debian bookworm main\n"
        },
    )
    with pytest.raises(StackError, match="K2_DOCKER_BASE_IMAGE"):
        debian_mirror(apt)
