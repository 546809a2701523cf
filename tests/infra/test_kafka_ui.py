"""The optional Kafka web UI of the Docker stack: off by default; on, a read-only kafbat UI on
the publish address with the stack's own credentials, every password a secret.

Proven here as the declared stack only (specs and Pulumi's mocks): the UI's image cannot be
pulled where K2 is developed, so no test starts it.
"""

from __future__ import annotations

import pytest

from k2.errors import ConfigError
from k2stack.docker.stack_spec import stack_spec
from k2stack.pulumi.config import validate
from k2stack.pulumi.program import k2_version
from k2stack.topology import KAFKA_UI
from tests.infra.infra_harness import (
    ALL_SECRETS,
    CI_PORT_OFFSET,
    STACKS,
    env_of,
    is_secret,
    run_stack,
    stack_config,
)

pytestmark = pytest.mark.infra
UI_PASSWORD = "kafka-ui-secret-0123456789"
SECRET_KEYS = frozenset(ALL_SECRETS) | {"k2:kafkaUiPassword"}


def _with_ui(stack: str) -> dict[str, str]:
    return {**stack_config(stack), "k2:kafkaUi": "true", "k2:kafkaUiPassword": UI_PASSWORD}


def _ui_env(stack: str) -> dict[str, str]:
    spec = stack_spec(validate(_with_ui(stack), SECRET_KEYS, stack), k2_version())
    return dict(spec.container("kafka-ui").env)


@pytest.mark.parametrize("stack", STACKS)
def test_no_stack_runs_the_ui_unless_asked(stack: str) -> None:
    spec = stack_spec(validate(stack_config(stack), frozenset(ALL_SECRETS), stack), k2_version())

    assert all(c.service != KAFKA_UI.name for c in spec.containers)


def test_the_ui_needs_its_password_as_a_secret() -> None:
    config = {**stack_config("dev"), "k2:kafkaUi": "true"}
    with pytest.raises(ConfigError, match="k2:kafkaUiPassword is not set"):
        validate(config, SECRET_KEYS, "dev")
    with pytest.raises(ConfigError, match="k2:kafkaUiPassword must be set as a secret"):
        validate(_with_ui("dev"), frozenset(ALL_SECRETS), "dev")


@pytest.mark.parametrize(("stack", "offset"), [("dev", 0), ("ci", CI_PORT_OFFSET)])
def test_the_ui_is_published_on_loopback_only(stack: str, offset: int) -> None:
    spec = stack_spec(validate(_with_ui(stack), SECRET_KEYS, stack), k2_version())
    ui = spec.container("kafka-ui")

    assert ui.image == KAFKA_UI.image
    (binding,) = ui.ports
    assert (binding.host_ip, binding.container_port) == ("127.0.0.1", KAFKA_UI.ports["http"])
    assert binding.host_port == KAFKA_UI.ports["http"] + offset
    # Started after every broker it reads; probed by its own health endpoint.
    brokers = {c.name for c in spec.containers if c.service.startswith("kafka-") and c is not ui}
    assert brokers and set(ui.depends_on) == brokers
    assert ui.healthcheck is not None and "/actuator/health" in ui.healthcheck.test[-1]


def test_the_ui_reads_the_stack_read_only_with_its_credentials() -> None:
    env = _ui_env("dev")

    assert env["KAFKA_CLUSTERS_0_READONLY"] == "true"
    assert env["KAFKA_CLUSTERS_0_BOOTSTRAPSERVERS"].endswith(":9092")
    # The registry's URL(s) without userinfo: the credentials go in their own settings.
    urls = env["KAFKA_CLUSTERS_0_SCHEMAREGISTRY"].split(",")
    assert urls and all(u.startswith("http://") and "@" not in u for u in urls)
    assert env["KAFKA_CLUSTERS_0_SCHEMAREGISTRYAUTH_USERNAME"] == "k2registry"
    assert env["KAFKA_CLUSTERS_0_SCHEMAREGISTRYAUTH_PASSWORD"] == ALL_SECRETS["k2:registryPassword"]
    assert (env["AUTH_TYPE"], env["SPRING_SECURITY_USER_PASSWORD"]) == ("LOGIN_FORM", UI_PASSWORD)
    assert env["GITHUB_RELEASE_INFO_ENABLED"] == "false"
    # PLAINTEXT Kafka on the dev stack: no SASL settings.
    assert not any("SASL" in key for key in env)


def test_with_scram_the_ui_signs_in_as_the_admin_principal() -> None:
    env = _ui_env("cluster")

    assert env["KAFKA_CLUSTERS_0_PROPERTIES_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT"
    assert env["KAFKA_CLUSTERS_0_PROPERTIES_SASL_MECHANISM"] == "SCRAM-SHA-512"
    jaas = env["KAFKA_CLUSTERS_0_PROPERTIES_SASL_JAAS_CONFIG"]
    assert 'username="k2-admin"' in jaas
    assert f'password="{ALL_SECRETS["k2:kafkaAdminPassword"]}"' in jaas


def test_the_program_declares_the_ui_with_its_env_secret() -> None:
    run = run_stack("dev", _with_ui("dev"), sorted(SECRET_KEYS))

    ui = run.containers()["k2-dev-kafka-ui"]
    assert is_secret(ui.inputs["envs"])  # passwords inside: never plain in Pulumi's state
    assert env_of(ui)["SPRING_SECURITY_USER_PASSWORD"] == UI_PASSWORD
    assert ui.inputs["image"] == KAFKA_UI.image
