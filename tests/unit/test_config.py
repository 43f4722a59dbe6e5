from __future__ import annotations

from pathlib import Path

import pytest

from teiten.config import SETTINGS, load_settings
from teiten.errors import ConfigError


def test_defaults_have_origin_default() -> None:
    s = load_settings(env={})
    assert s.home_country == "JP"
    assert all(s.origin[x.name] == "default" for x in SETTINGS)


def test_layers_file_env_option(tmp_path: Path) -> None:
    f = tmp_path / "teiten.toml"
    f.write_text(
        'home_country = "de"\ntz = "Asia/Tokyo"\n[sensor]\nnetworks = ["203.0.113.0/24"]\n'
    )
    s = load_settings(config_file=f, env={"TEITEN_TZ": "UTC"}, overrides={"threads": 1})
    assert s.home_country == "DE" and s.origin["home_country"] == str(f)
    assert s.tz == "UTC" and s.origin["tz"] == "TEITEN_TZ"
    assert s.sensor_networks == ("203.0.113.0/24",)
    assert s.threads == 1 and s.origin["threads"] == "option"


def test_none_and_empty_options_do_not_override() -> None:
    s = load_settings(
        env={"TEITEN_SENSOR_NETWORKS": "198.51.100.0/24"},
        overrides={"sensor_networks": [], "tz": None},
    )
    assert s.sensor_networks == ("198.51.100.0/24",)
    assert s.tz == "UTC"


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("home_country", "Japan", "two-letter"),
        ("tz", "Mars/Base", "time zone"),
        ("sensor_networks", "300.1.1.0/24", "sensor_networks"),
        ("threads", "0", "threads"),
        ("nonsense", "1", "unknown setting"),
    ],
)
def test_bad_values_are_one_line_config_errors(key: str, value: str, words: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_settings(env={}, overrides={key: value})
    assert words in str(e.value) and "\n" not in str(e.value)


def test_bad_toml_names_the_file(tmp_path: Path) -> None:
    f = tmp_path / "bad.toml"
    f.write_text("home_country = \n")
    with pytest.raises(ConfigError, match=r"bad\.toml"):
        load_settings(config_file=f, env={})


def test_replace_keeps_other_values() -> None:
    s = load_settings(env={}, overrides={"home_country": "FR"})
    t = s.replace(sensor="x")
    assert t.home_country == "FR" and t.sensor == "x" and s.sensor == "sensor"


def test_credentials_are_declared_secret() -> None:
    secret = {s.name for s in SETTINGS if s.secret}
    assert {"webhook_secret", "webhook_url"} <= secret
    assert "home_country" not in secret


def test_secret_values_never_in_repr() -> None:
    s = load_settings(
        env={
            "TEITEN_WEBHOOK_SECRET": "hunter2-key",
            "TEITEN_WEBHOOK_URL": "https://h.example/T0K3N",
        }
    )
    assert s.webhook_secret == "hunter2-key"  # the value itself is there for the code
    assert "hunter2" not in repr(s) and "T0K3N" not in repr(s)
    assert s.shown()["webhook_secret"] == "******** (set)"
    assert load_settings(env={}).shown()["webhook_secret"] == "(empty)"


@pytest.mark.parametrize("fmt", ["table", "csv", "json"])
def test_settings_command_masks_secrets(fmt: str) -> None:
    from click.testing import CliRunner

    from teiten.cli.main import cli

    env = {"TEITEN_WEBHOOK_SECRET": "hunter2-key", "TEITEN_WEBHOOK_URL": "https://h.example/T0K3N"}
    result = CliRunner().invoke(cli, ["settings", "--format", fmt], env=env)
    assert result.exit_code == 0, result.output
    assert "hunter2" not in result.output and "T0K3N" not in result.output
    assert "(set)" in result.output and "TEITEN_WEBHOOK_SECRET" in result.output
