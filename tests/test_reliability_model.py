"""Model errors at the command line: one line naming the model and what to try, a
traceback only with --debug; and the torch-free model description the pipeline starts with.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import test_reliability_support as support


@pytest.fixture
def root(tmp_path):
    support.good_rollout(tmp_path / "root", "r_short", n=3)
    support.good_rollout(tmp_path / "root", "r_long", n=30)
    return tmp_path / "root"


@pytest.fixture
def offline(monkeypatch):
    """No network: the Hub client's offline switch, as HF_HUB_OFFLINE=1 sets it at import."""
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


def test_unknown_model_id_offline(root, tmp_path, offline):
    wh = tmp_path / "wh"
    args = ["ingest", str(root), "--checkpoint", "no-such-org/no-such-model", "--warehouse", str(wh)]
    result = support.cli(*args)
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: model 'no-such-org/no-such-model' is not a local directory and not in the local "
        "Hugging Face cache (offline mode, the Hub was not asked): pass a local checkpoint "
        "directory, or set HF_HOME to a cache that holds it, or download it once with network "
        "access (`hf download no-such-org/no-such-model`)\n")
    assert not wh.exists()  # refused before the warehouse was touched
    debug = support.cli(*args, "--debug")
    assert debug.exit_code == 1
    assert "Traceback (most recent call last)" in debug.stderr and "ModelLoadError" in debug.stderr


@pytest.mark.parametrize(("config", "class_name"), [
    # Falcon's config names layers and heads as the pipeline reads them: the check comes when
    # the first rollout needs the model, inside the run.
    ({"model_type": "falcon", "num_hidden_layers": 2, "num_attention_heads": 2, "hidden_size": 16,
      "vocab_size": 100}, "FalconForCausalLM"),
    # Bloom's does not: the full description (and its check) comes before the run.
    ({"model_type": "bloom", "n_layer": 2, "n_head": 2, "hidden_size": 16, "vocab_size": 100},
     "BloomForCausalLM"),
])
def test_model_without_the_attention_interface(root, tmp_path, offline, config, class_name):
    model_dir = tmp_path / config["model_type"]
    model_dir.mkdir()
    (model_dir / "config.json").write_text(json.dumps(config))
    wh = tmp_path / "wh"
    assert support.cli("load", str(root), "--warehouse", str(wh)).exit_code == 0
    before = support.table_checksums(wh)
    result = support.cli("ingest", str(root), "--checkpoint", str(model_dir), "--no-progress",
                         "--warehouse", str(wh))
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: model '{model_dir}' ({class_name}) does not compute attention through transformers' "
        "AttentionInterface, so the fused capture cannot see its attention: use a model class that "
        "supports attention backends (e.g. Qwen3, Llama, Mistral, Qwen2)\n")
    assert support.table_checksums(wh) == before


def fake_oom_above(monkeypatch, max_tokens: int):
    """Make the capture run out of memory on inputs longer than max_tokens (a true boundary:
    torch raises OutOfMemoryError from inside the model's attention)."""
    import torch

    import ingest.capture as capture

    real = capture.segment_attention_sums

    def segment_attention_sums(query, *args, **kwargs):
        if query.shape[-2] > max_tokens:  # query: [batch, head, query_pos, head_dim]
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return real(query, *args, **kwargs)

    monkeypatch.setattr(capture, "segment_attention_sums", segment_attention_sums)


def test_out_of_memory_on_a_long_trace(root, tmp_path, tiny_model_dir, monkeypatch):
    import ingest.capture  # noqa: F401  (the CLI knows its errors once it is imported)

    fake_oom_above(monkeypatch, max_tokens=100)
    wh = tmp_path / "wh"
    args = ["ingest", str(root), "--checkpoint", str(tiny_model_dir), "--no-progress", "--query-block", "64",
            "--warehouse", str(wh)]
    message = (f"rollout 'r_long': model '{tiny_model_dir}' ran out of memory capturing attention for "
               "{n} tokens with query_block=64 on cpu: try a smaller query block, the CPU "
               "(device='cpu'), or dtype='bfloat16'")

    stopped = support.cli(*args)
    assert stopped.exit_code == 1
    assert stopped.stdout == ""
    n_tokens = stopped.stderr.split("capturing attention for ")[1].split()[0]
    assert int(n_tokens) > 100
    assert stopped.stderr == f"Error: {message.format(n=n_tokens)}\n"
    assert support.rollout_ids(wh) == set()

    debug = support.cli(*args, "--debug")
    assert debug.exit_code == 1
    assert "Traceback (most recent call last)" in debug.stderr
    assert "torch.OutOfMemoryError: CUDA out of memory" in debug.stderr
    assert debug.stderr.endswith(f"Error: {message.format(n=n_tokens)}\n")

    kept = support.cli(*args, "--keep-going")
    assert kept.exit_code == 1
    assert f"failed: {message.format(n=n_tokens)}" in kept.stdout.splitlines()
    assert kept.stdout.splitlines()[-1].startswith("1 ingested, 0 skipped (unchanged), 1 failed")
    info = support.assert_consistent(wh, no_orphans=True)
    assert info["attention"] == {("tiny-qwen3", "r_short")}


def test_quick_description_equals_the_full_one(tiny_model_dir):
    from ingest.model import describe_model
    from ingest.model_info import quick_describe

    for name in (None, "my-name"):
        quick, full = quick_describe(str(tiny_model_dir), name=name), describe_model(str(tiny_model_dir),
                                                                                      name=name)
        assert (quick.name, quick.source, quick.revision, quick.n_layers, quick.n_heads) == (
            full.name, full.source, full.revision, full.n_layers, full.n_heads)


def test_an_ingest_with_nothing_to_compute_never_imports_torch(tmp_path, tiny_model_dir):
    """Every rollout current: the run reads config.json, not torch (seconds saved per run)."""
    support.good_rollout(tmp_path / "root", "r1", n=3)
    wh = tmp_path / "wh"
    first = support.cli("ingest", str(tmp_path / "root"), "--checkpoint", str(tiny_model_dir),
                        "--no-progress", "--warehouse", str(wh))
    assert first.exit_code == 0, first.output
    script = textwrap.dedent(f"""
        import sys
        from ingest.pipeline import IngestOptions, ingest
        from warehouse.store import Warehouse
        summary = ingest([{str(tmp_path / "root")!r}], Warehouse({str(wh)!r}),
                         IngestOptions(model={str(tiny_model_dir)!r}, progress=False))
        assert summary.skipped == ["r1"], summary
        assert "torch" not in sys.modules and "transformers" not in sys.modules
    """)
    subprocess.run([sys.executable, "-c", script], check=True, cwd=support.ROOT, env=support.subprocess_env(),
                   timeout=120)
