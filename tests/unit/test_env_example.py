"""`.env.example` is generated from the settings classes and stays in sync with them."""

from __future__ import annotations

from k2.envfile import ENV_EXAMPLE, SETTINGS, render


def test_env_example_matches_the_settings_classes() -> None:
    assert ENV_EXAMPLE.read_text() == render(), (
        ".env.example is stale: run `./task env:example` and commit it"
    )


def test_every_setting_is_listed_with_its_default() -> None:
    text = ENV_EXAMPLE.read_text().splitlines()
    for cls in SETTINGS:
        prefix = str(cls.model_config["env_prefix"])
        for name, field in cls.model_fields.items():
            variable = f"{prefix}{name.upper()}="
            line = next(line for line in text if line.removeprefix("# ").startswith(variable))
            default = field.get_default()
            if isinstance(default, int | float | str) and not isinstance(default, bool):
                assert line == f"{variable}{default}"


def test_meanings_come_from_the_comments_above_the_fields() -> None:
    text = ENV_EXAMPLE.read_text()
    # The comment above IngestSettings.max_records, verbatim.
    assert (
        "# Commit policy: flush when any limit is reached (freshness ≈ max_age_s + commit time).\n"
        in text
    )
    assert "K2_INGEST_MAX_RECORDS=100000\n" in text
    assert "# one of PLAINTEXT, SASL_PLAINTEXT, SASL_SSL; optional\n" in text
