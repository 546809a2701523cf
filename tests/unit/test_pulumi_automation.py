"""Stack config assembly, the backend passphrase and the Engine API provider's plumbing (no engine)."""

from __future__ import annotations

import io
import stat
import tarfile
from pathlib import Path

import dill
import pytest

from k2.errors import ConfigError, StackError
from k2stack.docker.apply import _upload_tar
from k2stack.docker.spec import STACK_LABEL, ContainerSpec
from k2stack.pulumi import automation, cli_install, engine_api
from k2stack.pulumi.config import KAFKA_SECRET_KEYS, SECRET_KEYS, URL_SAFE_PASSWORD, validate
from k2stack.pulumi.stacks import stack_name_for

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("stack", "base"),
    [("ci-1234", "ci"), ("ci-12-3", "ci"), ("dev", "dev"), ("cluster", "cluster")],
)
def test_stack_base(stack: str, base: str) -> None:
    assert automation.stack_base(stack) == base


@pytest.mark.parametrize("stack", ["-x", "CI-1", "c.i-2", ""])
def test_bad_stack_names_are_refused(stack: str) -> None:
    with pytest.raises(ConfigError):
        automation.stack_base(stack)


def test_an_ephemeral_stack_uses_the_committed_ci_config() -> None:
    assert automation.committed_config_file("ci-42", REPO) == REPO / "Pulumi.ci.yaml"
    with pytest.raises(ConfigError, match="no committed config"):
        automation.committed_config_file("nosuch-1", REPO)


def test_committed_values_become_config_strings(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.x.yaml"
    path.write_text("config:\n  k2:ephemeral: true\n  k2:kafkaBrokers: 3\n  k2:namePrefix: x-1\n")
    assert automation.read_config_file(path) == {
        "k2:ephemeral": "true",
        "k2:kafkaBrokers": "3",
        "k2:namePrefix": "x-1",
    }
    path.write_text("config:\n  k2:postgresPassword:\n    secure: AAAB\n")
    with pytest.raises(ConfigError, match="not a plain value"):
        automation.read_config_file(path)


def test_stack_config_layers_file_extras_and_secrets() -> None:
    secrets = automation.generated_secrets(automation.required_secret_keys({}))
    config = automation.stack_config(
        REPO / "Pulumi.ci.yaml",
        {"k2:namePrefix": "ci-7", "k2:workerReplicas": "2"},
        secrets,
    )
    assert config["k2:ephemeral"].value == "true"
    assert not config["k2:ephemeral"].secret
    assert config["k2:workerReplicas"].value == "2"  # the extra wins over the file
    assert config["k2:namePrefix"].value == "ci-7"
    for key, value in secrets.items():
        assert config[key].value == value
        assert config[key].secret
    # What the runner assembles is a valid stack config.
    plain = {key: value.value for key, value in config.items()}
    validate({**plain, "k2:portOffset": "1000"}, frozenset(secrets), "ci")


def test_scram_stacks_need_the_kafka_passwords() -> None:
    plain = automation.required_secret_keys({})
    assert plain == tuple(f"k2:{key}" for key in SECRET_KEYS)
    scram = automation.required_secret_keys({"k2:kafkaSecurity": "scram"})
    assert scram == plain + tuple(f"k2:{key}" for key in KAFKA_SECRET_KEYS)


def test_generated_secrets_are_url_safe_and_distinct() -> None:
    keys = automation.required_secret_keys({"k2:kafkaSecurity": "scram"})
    secrets = automation.generated_secrets(keys)
    assert set(secrets) == set(keys)
    assert len(set(secrets.values())) == len(keys)
    for value in secrets.values():
        assert len(value) >= 24
        assert URL_SAFE_PASSWORD.fullmatch(value)


def test_passphrase_is_made_once_and_private(tmp_path: Path) -> None:
    backend = tmp_path / "pulumi"
    first = automation.passphrase(backend)
    assert len(first) >= 32
    assert automation.passphrase(backend) == first
    assert stat.S_IMODE((backend / "passphrase").stat().st_mode) == 0o600


def test_pulumi_dir_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("K2_PULUMI_DIR", str(tmp_path))
    assert automation.pulumi_dir() == tmp_path


def test_stack_names_of_runs() -> None:
    assert stack_name_for("ci", "42", ephemeral=True) == "ci-42"
    assert stack_name_for("dev", None, ephemeral=False) == "dev"
    assert stack_name_for("ci-42", None, ephemeral=True) == "ci-42"
    fresh = stack_name_for("ci", None, ephemeral=True)
    assert fresh.startswith("ci-")
    assert fresh != stack_name_for("ci", None, ephemeral=True)
    with pytest.raises(ConfigError, match="run id"):
        stack_name_for("ci", "Bad_Id", ephemeral=True)


def _spec(**fields: object) -> ContainerSpec:
    values: dict[str, object] = {
        "name": "k2t-x-svc",
        "service": "svc",
        "image": "k2/base:bookworm-manual",
        "env": {"A": "1", "PASSWORD": "p=q"},
        "secret_env": frozenset({"PASSWORD", "A", "B", "C"}),
        "network": "k2t-x-net",
        "hostname": "svc",
        "memory_mb": 64,
        "labels": {STACK_LABEL: "k2t-x"},
        **fields,
    }
    return ContainerSpec.model_validate(values)


def test_spec_inputs_round_trip_and_are_stable() -> None:
    spec = _spec()
    data = engine_api.spec_input(spec)
    assert "env" not in data
    assert data["secret_env"] == ["A", "B", "C", "PASSWORD"]
    lines = [f"{key}={value}" for key, value in sorted(spec.env.items())]
    assert engine_api.container_spec({"spec": data, "env": lines}) == spec


def test_any_change_replaces_after_deleting() -> None:
    provider = engine_api.ContainerProvider()
    olds = {"spec": engine_api.spec_input(_spec()), "env": ["A=1"], "__provider": "x"}
    same = provider.diff("id", olds, {**olds, "__provider": "y"})
    assert same.changes is False
    changed = provider.diff("id", olds, {**olds, "env": ["A=2"]})
    assert (changed.changes, changed.replaces) == (True, ["env"])
    assert changed.delete_before_replace is True


@pytest.mark.parametrize(
    "provider",
    [engine_api.NetworkProvider(), engine_api.VolumeProvider(), engine_api.ContainerProvider()],
)
def test_providers_pickle_by_reference(provider: object) -> None:
    # Pulumi pickles providers with dill (recurse=True): they must hold nothing, and load in
    # the provider process by importing this module.
    data = dill.dumps(provider, recurse=True)
    assert b"k2stack.pulumi.engine_api" in data
    assert len(data) < 200
    assert type(dill.loads(data)) is type(provider)


def test_uploads_carry_files_only() -> None:
    data = _upload_tar({"/etc/k2/a.conf": "x=1\n", "/opt/run.sh": "#!/bin/sh\ntrue\n"})
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert set(members) == {"etc/k2/a.conf", "opt/run.sh"}
    assert all(m.isfile() for m in members.values())
    assert members["etc/k2/a.conf"].mode == 0o644
    assert members["opt/run.sh"].mode == 0o755


def test_installing_the_cli_without_go_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli_install.shutil, "which", lambda _: None)
    with pytest.raises(StackError, match="needs Go"):
        cli_install.ensure_pulumi_cli(tmp_path)
