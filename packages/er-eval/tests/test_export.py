"""`er-eval export`: real runs trained by er-train on the toy dataset, exported, then replayed
by code that imports torch and safetensors and nothing of er.

The key check: for a concat run, an attention-fusion run and a GRU-context run that reads
speakers (with a regression task beside the classes), the saved program, called dialogue by
dialogue, reproduces the run's own test probabilities within 1e-6, both in the export and in
tools/check_bundle.py run in a subprocess where importing er is impossible. Then the bundle's
files, its README example, the program's input checks, and the refusals.

The toy dataset and `train_run` are er-testing's shared fixtures.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import msgspec
import numpy as np
import pytest
from er_core import ErError, RunManifest, read_stream, read_tensors

ROOT = Path(__file__).resolve().parents[3]
CHECK_BUNDLE = ROOT / "tools" / "check_bundle.py"
# run name -> --set overrides
RUNS = {
    "concat": ["seed=1"],
    "attention": ["fusion.kind=attention", "fusion.heads=2", "seed=2"],
    "gru": [
        "context.kind=gru",
        "context.hidden=16",
        "context.speaker_dim=4",
        'tasks=["emotion", "arousal"]',
        "head.kind=multi-task",
        "seed=3",
    ],
}
# Python run before a script: any import of er (or its table and message libraries) fails, so
# the script proves the bundle needs torch and safetensors alone
NO_ER = """
import sys
class _NoEr:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0].startswith("er_") or name in ("polars", "msgspec"):
            raise ImportError(f"{name} must not be needed by an exported bundle")
sys.meta_path.insert(0, _NoEr())
"""


@pytest.fixture(scope="module")
def runs(toy, train_run, tmp_path_factory) -> dict[str, RunManifest]:
    import torch

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("runs")
    return {name: train_run(toy.stream, root, *sets) for name, sets in RUNS.items()}


def export(run: RunManifest, out: Path, stream: Path | None = None) -> dict:
    from er_eval.export import export_run

    check = read_stream([str(stream)]) if stream else None
    return export_run(run.run_dir, out, check=check)


def torch_only(*args: str, code: str = "", cwd: Path | None = None) -> subprocess.CompletedProcess:
    """`python -c NO_ER + code ARGS` (or tools/check_bundle.py ARGS), one thread."""
    script = code or f"import runpy\nrunpy.run_path({str(CHECK_BUNDLE)!r}, run_name='__main__')\n"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-c", NO_ER + script, *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


# --- the key check: the run's test probabilities, reproduced with torch alone ------------------


@pytest.mark.parametrize("name", list(RUNS))
def test_bundle_reproduces_the_runs_test_predictions(name, runs, toy, tmp_path):
    run = runs[name]
    meta = export(run, tmp_path / "bundle", toy.stream)
    assert meta["check"]["max_abs_diff"] <= 1e-6 and meta["self_check_max_abs_diff"] <= 1e-6
    assert meta["check"]["utterances"] == len(toy.split_ids("test"))
    r = torch_only(str(tmp_path / "bundle"))
    assert r.returncode == 0, r.stderr
    diff = float(re.search(r"max \|diff\| (\S+)", r.stdout).group(1))
    assert diff <= 1e-6, r.stdout
    # the expected file is the run's own test prediction file, reordered by dialogue
    tensors, meta_ = read_tensors(run.predictions["test"].path)
    expected, info = read_tensors(tmp_path / "bundle" / "check" / "expected.safetensors")
    where = {u: i for i, u in enumerate(json.loads(meta_["er.predictions"])["ids"])}
    rows = [where[u] for u in json.loads(info["ids"])]
    np.testing.assert_array_equal(expected["emotion"], tensors["emotion.probs"][rows])


def test_check_bundle_fails_on_other_outputs(runs, toy, tmp_path):
    """The replay is a real comparison: altered expected outputs exit 1."""
    from safetensors.numpy import save_file

    bundle = tmp_path / "bundle"
    export(runs["concat"], bundle, toy.stream)
    expected, info = read_tensors(bundle / "check" / "expected.safetensors")
    expected["emotion"][0, 0] += 1e-4
    other = tmp_path / "other.safetensors"
    save_file(expected, str(other), metadata=info)
    r = torch_only(str(bundle), str(bundle / "check" / "features.safetensors"), str(other))
    assert r.returncode == 1 and "max |diff| 0.0001" in r.stdout, r.stdout + r.stderr


def test_bundle_files(runs, toy, tmp_path):
    run = runs["gru"]
    bundle = tmp_path / "bundle"
    meta = export(run, bundle)  # no --check: no check/ folder
    names = {p.name for p in bundle.iterdir()}
    assert names == {
        "model.pt",
        "weights.safetensors",
        "network.json",
        "classes.json",
        "encoders.json",
        "bundle.json",
        "README.md",
    }
    assert json.loads((bundle / "bundle.json").read_text()) == meta
    assert meta["run"] == run.id and meta["check"] is None
    assert meta["network"] == {"fusion": "concat", "context": "gru", "head": "multi-task"}
    sig = meta["signature"]
    assert sig["modalities"] == ["text", "audio", "video"] and sig["speakers"] is True
    assert sig["tasks"] == {"emotion": "classification", "arousal": "regression"}
    assert json.loads((bundle / "classes.json").read_text()) == run.classes
    network = json.loads((bundle / "network.json").read_text())
    assert network["context"]["kind"] == "gru" and network["dims"] == run.dims
    encoders = json.loads((bundle / "encoders.json").read_text())
    assert {m: e["cache_key"] for m, e in encoders.items()} == run.encoder_keys
    assert (bundle / "weights.safetensors").read_bytes() == Path(run.weights.path).read_bytes()
    # with the training stream at hand, encoders.json also says where the features came from
    with_stream = export(run, tmp_path / "b2", toy.stream)
    encoders = json.loads((tmp_path / "b2" / "encoders.json").read_text())
    assert encoders["text"]["source"].endswith("text.npz") and with_stream["check"]["dialogues"]


def test_readme_example_runs_with_torch_alone(runs, tmp_path):
    bundle = tmp_path / "bundle"
    export(runs["gru"], bundle)
    readme = (bundle / "README.md").read_text()
    code = re.search(r"```python\n(.*?)```", readme, re.S).group(1)
    assert len(code.strip().splitlines()) <= 10
    r = torch_only(code=code, cwd=bundle)
    assert r.returncode == 0, r.stderr
    names = eval(r.stdout)  # the printed list of predicted class names
    assert len(names) == 3 and set(names) <= set(runs["gru"].classes["emotion"])


def test_program_checks_its_inputs(runs, tmp_path):
    import torch

    bundle = tmp_path / "bundle"
    export(runs["gru"], bundle)
    program = torch.jit.load(str(bundle / "model.pt"))
    feats = {"text": torch.randn(4, 12), "audio": torch.randn(4, 6), "video": torch.randn(4, 6)}
    present = torch.ones(4, 3, dtype=torch.bool)
    out = program(feats, present, torch.tensor([7, 3, 7, 9]))
    assert out["emotion"].shape == (4, 4) and out["arousal"].shape == (4,)
    torch.testing.assert_close(out["emotion"].sum(-1), torch.ones(4))
    # speaker ids are renamed by first appearance: any integers give the same result
    again = program(feats, present, torch.tensor([0, 1, 0, 2]))
    torch.testing.assert_close(again["emotion"], out["emotion"], rtol=0, atol=0)
    with pytest.raises(torch.jit.Error, match="reads speakers"):
        program(feats, present)
    with pytest.raises(torch.jit.Error, match=r"feats\[audio\] must be \(n, 6\)"):
        program({**feats, "audio": torch.randn(4, 5)}, present, torch.zeros(4, dtype=torch.long))
    with pytest.raises(torch.jit.Error, match="lacks modality video"):
        program({"text": feats["text"], "audio": feats["audio"]}, present, torch.zeros(4))
    # a concat run without context reads no speakers
    export(runs["concat"], tmp_path / "c")
    plain = torch.jit.load(str(tmp_path / "c" / "model.pt"))
    assert plain(feats, present)["emotion"].shape == (4, 4)


# --- refusals -------------------------------------------------------------------------------


def copy_run(run: RunManifest, dest: Path) -> Path:
    shutil.copytree(run.run_dir, dest, symlinks=False)
    return dest


def test_run_without_weights_is_refused(runs, tmp_path):
    folder = copy_run(runs["concat"], tmp_path / "run")
    (folder / "weights.safetensors").unlink()
    moved = msgspec.json.decode((folder / "run.json").read_bytes(), type=RunManifest)
    gone = msgspec.structs.replace(
        moved.weights, path=str(tmp_path / "elsewhere" / "weights.safetensors")
    )
    (folder / "run.json").write_bytes(
        msgspec.json.encode(msgspec.structs.replace(moved, weights=gone))
    )
    from er_eval.export import export_run

    with pytest.raises(ErError, match="weights file is missing"):
        export_run(folder, tmp_path / "bundle")
    assert not (tmp_path / "bundle").exists()


def test_method_l_run_is_refused(runs, tmp_path, cli, one_error):
    folder = copy_run(runs["concat"], tmp_path / "run")
    run = msgspec.json.decode((folder / "run.json").read_bytes(), type=RunManifest)
    config = {**run.config, "run": {**run.config["run"], "method": "L"}}
    changed = msgspec.structs.replace(run, config=config)
    (folder / "run.json").write_bytes(msgspec.json.encode(changed))
    r = cli("export", str(folder), "--out", str(tmp_path / "bundle"))
    assert r.returncode == 1 and r.stdout == b""
    err, hint = one_error(r.stderr)
    assert "fine-tuned its text encoder (method L)" in err and "method F" in hint
    assert not (tmp_path / "bundle").exists()


def test_missing_out_parent_existing_out_and_other_dataset(runs, toy, make_toy, tmp_path, cli):
    from er_eval.export import export_run

    run = runs["concat"]
    with pytest.raises(ErError, match="folder that would hold the bundle does not exist") as e:
        export_run(run.run_dir, tmp_path / "nope" / "bundle")
    assert e.value.at == str(tmp_path / "nope") and not (tmp_path / "nope").exists()
    (tmp_path / "there").mkdir()
    with pytest.raises(ErError, match="already exists"):
        export_run(run.run_dir, tmp_path / "there")
    other = make_toy(tmp_path / "other", name="other", n_dialogues=12, seed=5)
    with pytest.raises(ErError, match="the run was trained on toy") as e:
        export_run(run.run_dir, tmp_path / "b", check=read_stream([str(other.stream)]))
    assert e.value.at == "--check" and not (tmp_path / "b").exists()
    usage = cli("export", run.run_dir)  # no --out
    assert usage.returncode == 2


def test_cli_reports_the_difference_on_stderr(runs, toy, tmp_path, cli):
    out = tmp_path / "bundle"
    r = cli("export", runs["attention"].run_dir, "--out", str(out), "--check", str(toy.stream))
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout == b""
    m = re.search(rb"test split, (\d+) utterances: max \|diff\| (\S+)", r.stderr)
    assert m and float(m.group(2)) <= 1e-6 and (out / "check" / "features.safetensors").is_file()


def test_a_network_that_does_not_trace_is_refused(toy, train_run, tmp_path):
    """The moe fusion routes each utterance to its top experts in Python: a trace fixes one
    routing. The self-check sees it and nothing is written."""
    from er_eval.export import export_run

    run = train_run(toy.stream, tmp_path / "runs", "fusion.kind=moe", "seed=4")
    with pytest.raises(ErError, match="does not trace faithfully") as e:
        export_run(run.run_dir, tmp_path / "bundle")
    assert "'moe'" in e.value.what
    assert not (tmp_path / "bundle").exists()
