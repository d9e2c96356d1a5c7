"""A Hub id that is not cached, on a machine that cannot reach the Hub, fails with one line
naming the model and what to try, found by one quick connect instead of the Hub client's
minute of retries (the test does not time it: tests never assert on timing)."""

from __future__ import annotations

from click.testing import CliRunner

import cli


def test_unreachable_hub_fails_fast_with_one_line(tmp_path, monkeypatch):
    # A closed port on loopback: connection refused at once, whatever this machine's network.
    monkeypatch.setenv("HF_ENDPOINT", "https://127.0.0.1:9")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    for proxy in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(proxy, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty cache
    result = CliRunner().invoke(cli.main, [
        "ingest", str(cli.DEMO_ROOT), "--checkpoint", "someone/not-cached-model",
        "--warehouse", str(tmp_path / "wh"), "--no-progress"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines[-1].startswith("Error: model 'someone/not-cached-model' is not a local directory")
    assert "the Hub (127.0.0.1) cannot be reached" in lines[-1]
    assert "pass a local checkpoint directory" in lines[-1]
    assert "Traceback" not in result.output
    assert not (tmp_path / "wh" / "va.duckdb").exists()
