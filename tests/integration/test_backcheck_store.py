"""Back-check rows kept in the store: import, show, the probes view, the report line."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from teiten.app.backcheck import stored_summary
from teiten.cli.main import cli
from teiten.config import load_settings

SCANS = Path(__file__).parent.parent / "data" / "scans"


def test_import_show_and_view(tmp_path: Path) -> None:
    store = str(tmp_path / "s")
    runner = CliRunner()
    env = {"TEITEN_CONFIG": ""}
    assert stored_summary(load_settings(env={}, overrides={"data": store})) is None
    r = runner.invoke(
        cli, ["backcheck", "import", str(SCANS / "nmap.xml"), "--data", store], env=env
    )
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["backcheck", "show", "--data", store, "--format", "json"], env=env)
    rows = json.loads(r.stdout)
    assert rows and {"target", "port", "state"} <= set(rows[0])
    r = runner.invoke(
        cli,
        [
            "query",
            "SELECT count(*) AS n FROM probes WHERE state = 'open'",
            "--data",
            store,
            "--format",
            "json",
        ],
        env=env,
    )
    assert json.loads(r.stdout)[0]["n"] > 0
    summary = stored_summary(load_settings(env={}, overrides={"data": store}))
    assert summary is not None and summary.open_on_port >= 1
    assert "52869 open" in summary.sentence
    r = runner.invoke(
        cli,
        ["backcheck", "import", str(SCANS / "nmap.xml"), "--data", store, "--no-store"],
        env=env,
    )
    again = runner.invoke(cli, ["backcheck", "show", "--data", store, "--format", "json"], env=env)
    assert len(json.loads(again.stdout)) == len(rows)  # --no-store kept nothing
