"""The text tower (er_train.tower): an untouched tower gives er-features' own features; LoRA (L)
trains only its adapters, full fine-tuning (T) every weight; a saved state reloads onto a fresh
tower exactly; bad encoders, methods and states are clear errors.

The encoder is a tiny random BERT (er_features.testing); the dataset a small table prepared by
er-data, then given two empty texts (er-data refuses them, but a table may still hold one).
"""

from __future__ import annotations

import csv
from pathlib import Path

import msgspec
import numpy as np
import polars as pl
import pytest
import torch
from er_core import DatasetManifest, ErError, FileRef, sha256_file
from er_features.testing import WORDS  # the tiny BERT's vocabulary
from er_features.text import TextConfig
from er_train.tower import FinetuneSection, LoraSection, TextTower, build_tower

MAPPING = """
dataset = "talk"
task = "emotion"
file = "utterances.csv"

[columns]
id = "{conv}_{line}"
dialogue = "conv"
text = "utterance"
turn = "line"
speaker = "who"
split = "fold"

[tasks.emotion]
column = "label"
classes = ["neutral", "happy", "sad", "angry"]
"""
PEOPLE = ["ross", "rachel", "monica", "joey"]
EMPTY = ["d1_2", "d3_0"]  # rows whose text is blanked after preparing

ALONE = TextConfig()
CONTEXT = TextConfig(
    context_before=2,
    template="{before} {target} now {speaker} feels {mask}",
    pooling="mask",
    layers=2,
)
AROUND = TextConfig(context_before=1, context_after=1, pooling="last", normalize=True)
TARGET = TextConfig(context_before=3, template="{before} [SEP] {target}", pooling="target")


@pytest.fixture(scope="module")
def talk(tmp_path_factory) -> DatasetManifest:
    """5 dialogues of 3-6 turns, words of the tiny vocabulary, rows shuffled; two empty texts."""
    from er_data.preparation import prepare

    root = tmp_path_factory.mktemp("talk")
    rng = np.random.default_rng(0)
    rows = []
    for d in range(5):
        for t in range(int(rng.integers(3, 7))):
            text = " ".join(rng.choice(WORDS, size=int(rng.integers(2, 12))))
            rows.append([f"d{d}", t, PEOPLE[int(rng.integers(4))], text, "happy", "train"])
    rows = [rows[i] for i in rng.permutation(len(rows))]
    (root / "data").mkdir()
    with (root / "data" / "utterances.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["conv", "line", "who", "utterance", "label", "fold"])
        w.writerows(rows)
    (root / "mapping.toml").write_text(MAPPING)
    return prepare("table", root / "data", configs=[str(root / "mapping.toml")], out=root / "out")


def blanked(talk: DatasetManifest, root: Path) -> DatasetManifest:
    """`talk` with the texts of EMPTY blanked after preparing (and its sha256 updated)."""
    table = pl.read_parquet(talk.table.path)
    blank = pl.col("id").is_in(EMPTY)
    table = table.with_columns(pl.when(blank).then(pl.lit("")).otherwise("text").alias("text"))
    path = root / "blanked.parquet"
    table.write_parquet(path)
    ref = FileRef(path=str(path), sha256=sha256_file(path), bytes=path.stat().st_size)
    return msgspec.structs.replace(talk, table=ref)


@pytest.fixture(scope="module")
def ids(talk) -> list[str]:
    return pl.read_parquet(talk.table.path)["id"].to_list()


@pytest.fixture(scope="module")
def bert(tmp_path_factory) -> Path:
    from er_features.testing import tiny_text_folder

    return tiny_text_folder(tmp_path_factory.mktemp("bert"))


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


def extracted(talk, bert, cfg: TextConfig, root: Path):
    """er-features' cached features of every table row (features, flags), extracted here."""
    from er_core import load_features
    from er_core.stream import Envelope, encode
    from er_features.extraction import ExtractConfig, extract

    env = Envelope(raw=encode(talk), kind="dataset", message=talk)
    xcfg = ExtractConfig(modality="text", encoder=str(bert), text=cfg)
    made = extract([env], xcfg, cache=root / "cache", out=root / "out", quiet=True)
    fs = load_features(made)
    return fs.features, fs.flags


def tower(bert, talk, ids, cache, method="L", cfg=ALONE, **kw) -> TextTower:
    fine = FinetuneSection(encoder=str(bert), text=msgspec.structs.asdict(cfg), **kw)
    return build_tower(fine, method, talk, ids, cache=cache)


def all_rows(t: TextTower) -> torch.Tensor:
    return torch.arange(len(t.prompts))


def train_steps(t: TextTower, steps: int = 4, lr: float = 0.05) -> None:
    """A toy objective: pull every present row's features towards a fixed random target."""
    gen = torch.Generator().manual_seed(1)
    target = torch.randn(len(t.prompts), t.dim, generator=gen)
    opt = torch.optim.AdamW([p for p in t.parameters() if p.requires_grad], lr=lr)
    t.train()
    for _ in range(steps):
        rows = all_rows(t)[t.present]
        loss = (t(rows) - target[rows]).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    t.eval()


@pytest.mark.parametrize("method", ["T", "L"])
@pytest.mark.parametrize(
    ("cfg", "frozen"),
    [(ALONE, 0), (CONTEXT, 0), (AROUND, 0), (TARGET, 0), (TARGET, 1)],
    ids=["alone", "context", "around", "target", "target-frozen"],
)
def test_untouched_tower_gives_extracted_features(
    talk, ids, bert, cache, tmp_path, method, cfg, frozen
):
    torch.manual_seed(0)
    t = tower(bert, talk, ids, cache, method, cfg, frozen_layers=frozen).eval()
    got = t.features(all_rows(t), chunk=5).numpy()  # other batches than er-features' own
    want, flags = extracted(talk, bert, cfg, tmp_path)
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert np.abs(want).sum(1).min() > 0  # every row real (a table has no empty text)
    assert t.present.all() and (flags == 0).all()


def test_mean_pooling_by_hand_after_training(talk, ids, bert, cache):
    """One unpadded prompt through the raw model: the plain mean of its hidden states."""
    torch.manual_seed(0)
    t = tower(bert, talk, ids, cache, "L")
    train_steps(t)
    row = int(torch.nonzero(t.present)[0])
    with torch.no_grad():
        hidden = t.encoder(input_ids=torch.tensor([t.prompts[row]])).last_hidden_state[0]
        want = sum(hidden[k] for k in range(hidden.shape[0])) / hidden.shape[0]
        got = t.features(all_rows(t))[row]
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


def test_rows_follow_the_order_of_ids(talk, ids, bert, cache):
    torch.manual_seed(0)
    fwd = tower(bert, talk, ids, cache, "T").eval()
    back = tower(bert, talk, ids[::-1], cache, "T").eval()
    assert back.prompts == fwd.prompts[::-1]
    torch.testing.assert_close(back.features(all_rows(back)), fwd.features(all_rows(fwd)).flip(0))


def test_lora_trains_only_its_adapters_and_reloads_exactly(talk, ids, bert, cache):
    torch.manual_seed(0)
    t = tower(bert, talk, ids, cache, "L", lora=LoraSection(r=4, alpha=8))
    trainable = {n for n, p in t.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    assert len(trainable) == 2 * 2 * 2  # (A, B) x (query, value) x 2 layers
    base = {n: p.detach().clone() for n, p in t.named_parameters() if not p.requires_grad}
    before = t.eval().features(all_rows(t))
    train_steps(t)
    after = t.features(all_rows(t))
    assert (after - before)[t.present].abs().max() > 1e-3
    assert all(torch.equal(p, base[n]) for n, p in t.named_parameters() if n in base)

    saved = t.saved_state()
    assert saved and all("lora_" in k for k in saved) and len(saved) == len(trainable)
    full = sum(v.numel() for v in t.encoder.state_dict().values())
    assert sum(v.numel() for v in saved.values()) < 0.1 * full

    torch.manual_seed(99)  # another LoRA init: only the loaded state can make them agree
    fresh = tower(bert, talk, ids, cache, "L", lora=LoraSection(r=4, alpha=8)).eval()
    assert fresh.key == t.key
    assert not torch.equal(fresh.features(all_rows(fresh)), after)
    fresh.load_saved_state(saved)
    assert torch.equal(fresh.features(all_rows(fresh)), after)


def test_full_finetune_trains_every_weight_and_reloads_exactly(talk, ids, bert, cache):
    torch.manual_seed(0)
    t = tower(bert, talk, ids, cache, "T")
    assert all(p.requires_grad for p in t.parameters())
    train_steps(t, lr=0.01)
    touched = [n for n, p in t.named_parameters() if p.grad is not None]
    assert len(touched) == len(list(t.parameters()))  # every weight is used (no pooler head)
    after = t.features(all_rows(t))
    saved = t.saved_state()
    assert set(saved) == set(t.encoder.state_dict())
    fresh = tower(bert, talk, ids, cache, "T").eval()
    assert not torch.equal(fresh.features(all_rows(fresh)), after)
    fresh.load_saved_state(saved)
    assert torch.equal(fresh.features(all_rows(fresh)), after)


def test_frozen_layers_run_once_train_the_upper_layers_and_reload(talk, ids, bert, cache):
    torch.manual_seed(0)
    t = tower(bert, talk, ids, cache, "T", TARGET, frozen_layers=1)
    lower = {n: p.detach().clone() for n, p in t.lower.named_parameters()}
    calls = []
    t.lower.register_forward_hook(lambda m, i, o: calls.append(1))
    train_steps(t, lr=0.01)
    assert len(calls) == 1  # every row's lower states computed in the first step, then kept
    assert all(torch.equal(p, lower[n]) for n, p in t.lower.named_parameters())
    saved = t.saved_state()
    assert saved and all(k.startswith("encoder.layer.0.") for k in saved)  # the upper layer
    after = t.features(all_rows(t))
    fresh = tower(bert, talk, ids, cache, "T", TARGET, frozen_layers=1).eval()
    assert fresh.key == t.key != tower(bert, talk, ids, cache, "T", TARGET).key
    fresh.load_saved_state(saved)
    torch.testing.assert_close(fresh.features(all_rows(fresh)), after, atol=1e-6, rtol=0)
    lora = tower(bert, talk, ids, cache, "L", TARGET, frozen_layers=1)
    assert len([p for p in lora.parameters() if p.requires_grad]) == 2 * 2  # upper layer only


def test_frozen_layers_need_one_pooled_layer(talk, ids, bert, cache):
    with pytest.raises(ErError, match="frozen_layers") as e:
        tower(bert, talk, ids, cache, "L", CONTEXT, frozen_layers=1)
    assert e.value.at == "$.finetune.frozen_layers" and "layers = 1" in e.value.hint


def test_gradient_checkpointing_changes_nothing_but_memory(talk, ids, bert, cache):
    grads = []
    for on in (False, True):
        torch.manual_seed(0)
        t = tower(bert, talk, ids, cache, "L", gradient_checkpointing=on).train()
        assert any(getattr(m, "gradient_checkpointing", False) for m in t.modules()) == on
        t(all_rows(t)).pow(2).sum().backward()  # dropout on: the recompute must replay it
        grads.append({n: p.grad for n, p in t.named_parameters() if p.requires_grad})
    assert grads[0] and grads[0].keys() == grads[1].keys()
    for n in grads[0]:
        torch.testing.assert_close(grads[1][n], grads[0][n])


def test_a_table_with_empty_texts_is_refused(talk, ids, bert, cache, tmp_path):
    """er-data's table check: every utterance has its transcript (the tower reads the table
    through er_data.check_table, like every reader)."""
    with pytest.raises(ErError) as e:
        tower(bert, blanked(talk, tmp_path), ids, cache, "T")
    assert "empty text for utterance" in e.value.what and "blanked.parquet" in e.value.at


def test_empty_prompts_are_absent_and_zero(talk, ids, bert, cache):
    torch.manual_seed(0)
    t = tower(bert, talk, ids, cache, "T")
    empty = [ids.index(u) for u in EMPTY]
    for i in empty:  # a table cannot hold an empty text any more: empty the prompts themselves
        t.prompts[i] = []
        t.present[i] = False
    assert not t.present[empty].any() and int(t.present.sum()) == len(ids) - 2
    rows = torch.tensor([empty[0], 0, empty[1]])
    out = t(rows)
    assert out.shape == (3, t.dim) and out.dtype == torch.float32
    assert out[0].abs().sum() == 0 and out[2].abs().sum() == 0 and out[1].abs().sum() > 0
    out.sum().backward()  # the real row's gradient still reaches the encoder
    assert t.encoder.embeddings.word_embeddings.weight.grad.abs().sum() > 0
    assert t(torch.tensor(empty)).abs().sum() == 0  # a batch of nothing but empty rows


def test_key_names_weights_text_method_and_lora(talk, ids, bert, cache):
    keys = {
        tower(bert, talk, ids, cache, m, c, lora=LoraSection(r=r)).key
        for m, c, r in [("L", ALONE, 8), ("L", ALONE, 4), ("T", ALONE, 8), ("L", CONTEXT, 8)]
    }
    assert len(keys) == 4
    again = tower(bert, talk, ids, cache, "T", ALONE, lora=LoraSection(r=4)).key
    assert again in keys  # T has no adapters: their options do not name it


def test_saved_state_with_missing_extra_or_misshaped_tensor_is_refused(talk, ids, bert, cache):
    torch.manual_seed(0)
    t = tower(bert, talk, ids, cache, "L")
    saved = t.saved_state()
    name = sorted(saved)[0]
    with pytest.raises(ErError, match="lacks") as e:
        t.load_saved_state({k: v for k, v in saved.items() if k != name}, source="ckpt.st")
    assert e.value.at == f"ckpt.st:{name}"
    with pytest.raises(ErError, match="shape") as e:
        t.load_saved_state(saved | {name: saved[name][:1]})
    assert name in str(e.value)
    with pytest.raises(ErError, match="unknown tensor") as e:
        t.load_saved_state(saved | {"encoder.extra.weight": torch.zeros(2)})
    assert "encoder.extra.weight" in str(e.value)
    r4 = tower(bert, talk, ids, cache, "L", lora=LoraSection(r=4))
    with pytest.raises(ErError, match="shape"):
        r4.load_saved_state(saved)
    with pytest.raises(ErError, match="lacks"):  # a LoRA state onto a fully trained tower
        tower(bert, talk, ids, cache, "T").load_saved_state(saved)


@pytest.mark.parametrize(
    ("kw", "method", "fragment", "at"),
    [
        ({"encoder": "no-such-encoder"}, "L", "unknown encoder", "$.finetune.encoder"),
        ({"encoder": "whisper-tiny.en"}, "L", "whisper encoder", "$.finetune.encoder"),
        ({"text": {"layers": 5}}, "L", "layers = 5", "$.finetune.text.layers"),
        ({"text": {"pooling": "mask"}}, "L", "{mask}", "$.finetune.text.template"),
        ({"text": {"pooling": "max"}}, "T", "pooling", "$.finetune.text.pooling"),
        ({"text": {"contxt_before": 2}}, "T", "contxt_before", "$.finetune.text.contxt_before"),
        ({"lora": LoraSection(target_modules=["q"])}, "L", "'q'", "$.finetune.lora.target_modules"),
    ],
)
def test_bad_config_is_a_clear_error(talk, ids, bert, cache, kw, method, fragment, at):
    fine = FinetuneSection(**({"encoder": str(bert)} | kw))
    with pytest.raises(ErError) as e:
        build_tower(fine, method, talk, ids, cache=cache)
    assert fragment in e.value.what and e.value.at == at and e.value.hint


def test_audio_encoder_folder_and_bad_method_are_refused(talk, ids, bert, cache, tmp_path):
    from er_features.testing import tiny_whisper_folder

    folder = tiny_whisper_folder(tmp_path / "whisper")
    with pytest.raises(ErError, match="whisper encoder"):
        build_tower(FinetuneSection(encoder=str(folder)), "T", talk, ids, cache=cache)
    for method in ("X", "F"):
        with pytest.raises(ValueError, match=f"'{method}'"):
            build_tower(FinetuneSection(encoder=str(bert)), method, talk, ids, cache=cache)
        with pytest.raises(ValueError):
            TextTower(None, method, LoraSection(), [])
    with pytest.raises(ErError, match="not in the dataset"):
        build_tower(FinetuneSection(encoder=str(bert)), "L", talk, [*ids, "nope"], cache=cache)
