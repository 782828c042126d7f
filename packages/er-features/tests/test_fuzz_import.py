"""Property-based fuzz of the feature import parser (the files users hand to `er-features
import`): any file gives a valid manifest of finite float32 features, or an ErError of exactly
one `error:` line and one `hint:` line; nothing else is raised, and a failure adds nothing to
the cache or the output root."""

from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from er_core import DatasetManifest, ErError, FeatureManifest, find, load_features, read_stream
from er_features.importer import import_features
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

DTYPES = ["float16", "float32", "float64", "int8", "int32", "uint8", "bool", "complex64"]
SPECIAL = [np.nan, np.inf, -np.inf, 1e300, -1e300, 3.5e38, 0.0, 1.0]


@pytest.fixture(scope="module")
def dataset(synth_dataset):
    envs = read_stream(["-"], stdin=io.BytesIO(synth_dataset))
    ids = pl.read_parquet(find(envs, DatasetManifest).table.path)["id"].to_list()
    return envs, ids


def files_under(*roots: Path) -> set[Path]:
    return {p for r in roots if r.exists() for p in r.rglob("*") if p.is_file()}


@st.composite
def matrices(draw, rows: int | None = None):
    """Arrays of any dtype and up to 3 dims; mostly (rows, d) with rows = the dataset's."""
    dtype = draw(st.sampled_from(DTYPES))
    if rows is not None and draw(st.booleans()):
        shape = (rows, draw(st.integers(0, 4)))
    else:
        shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5))
    arr = draw(hnp.arrays(dtype, shape))
    if arr.dtype.kind == "f" and arr.size and draw(st.booleans()):
        flat = arr.reshape(-1).astype(np.float64)
        flat[draw(st.integers(0, flat.size - 1))] = draw(st.sampled_from(SPECIAL))
        with np.errstate(over="ignore", invalid="ignore"):  # 1e300 in float16: inf, on purpose
            arr = flat.reshape(arr.shape).astype(arr.dtype if draw(st.booleans()) else np.float64)
    return arr


@st.composite
def feature_files(draw, ids: list[str]):
    """(suffix, writer(path)) for a random file in one of the accepted layouts, or junk."""
    n = len(ids)
    some_ids = draw(
        st.one_of(
            st.just(ids),
            st.lists(st.sampled_from([*ids, "x", ""]), max_size=n + 2),
            st.permutations(ids),
        )
    )
    kind = draw(st.sampled_from(["npz", "npz-rows", "safetensors", "st-rows", "parquet", "junk"]))
    feats = draw(matrices(rows=len(some_ids)))
    if draw(st.booleans()):  # a well-formed file, but for a value that may be out of range
        some_ids = draw(st.permutations(ids))
        dtype = draw(st.sampled_from(["float16", "float32", "float64", "int32"]))
        floats = st.floats(-1e3, 1e3, width=16 if dtype == "float16" else 32)
        values = floats if dtype != "int32" else st.integers(-1000, 1000)
        feats = draw(hnp.arrays(dtype, (n, draw(st.integers(1, 4))), elements=values))
        if dtype == "float64" and draw(st.booleans()):
            feats.flat[draw(st.integers(0, feats.size - 1))] = draw(st.sampled_from(SPECIAL))
        kind = draw(st.sampled_from(["npz", "safetensors"]))
    if kind == "npz":
        keys = draw(st.sampled_from([("ids", "features")] * 3 + [("ids",), ("ids", "x")]))
        id_arr = draw(st.sampled_from([np.array(some_ids)] * 3 + [np.arange(len(some_ids)), feats]))
        data = {k: (id_arr if k == "ids" else feats) for k in keys}
        return ".npz", lambda p: np.savez(p, **data)
    if kind == "npz-rows":
        vecs = {u or "_": draw(matrices()) for u in some_ids[:6]}
        return ".npz", lambda p: np.savez(p, **vecs)
    if kind in ("safetensors", "st-rows"):
        from safetensors.numpy import save_file

        if feats.dtype.kind == "c":
            feats = feats.real.copy()
        meta_ids = draw(
            st.sampled_from([json.dumps(some_ids)] * 3 + [json.dumps({"a": 1}), "[1, 2", "[1]"])
        )
        if kind == "safetensors":
            return ".safetensors", lambda p: save_file(
                {"features": np.ascontiguousarray(feats)}, str(p), metadata={"ids": meta_ids}
            )
        vecs = {u or "_": np.ascontiguousarray(draw(matrices()).real) for u in some_ids[:6]}
        return ".safetensors", lambda p: save_file(vecs, str(p))
    if kind == "parquet":
        width = draw(st.integers(0, 3))
        cells = st.one_of(
            st.none(),
            st.lists(
                st.floats(allow_nan=True, allow_infinity=True), min_size=width, max_size=width
            ),
            st.lists(st.floats(allow_nan=False), max_size=4),
        )
        rows = [draw(cells) for _ in some_ids]
        frame = pl.DataFrame(
            {"id": some_ids, "features": rows},
            schema={"id": pl.String, "features": pl.List(pl.Float64)},
        )
        return ".parquet", frame.write_parquet
    junk = draw(st.binary(max_size=200))
    suffix = draw(st.sampled_from([".npz", ".safetensors", ".parquet", ".csv"]))
    return suffix, lambda p: Path(p).write_bytes(junk)


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_import_never_crashes_and_never_caches_on_failure(dataset, data):
    envs, ids = dataset
    suffix, write = data.draw(feature_files(ids))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        src = root / f"feats{suffix}"
        write(src)
        cache, out = root / "cache", root / "out"
        try:
            m = import_features(envs, "audio", src, cache=cache, out=out)
        except ErError as e:
            event(e.what.split(" (")[0][:40])
            lines = e.lines()
            assert len(lines) == 2, lines
            assert lines[0].startswith("error: ") and lines[1].startswith("hint: "), lines
            assert "bug in er" not in lines[1], lines
            assert files_under(cache, out) == set(), "a failed import left files behind"
            return
        event("imported")
        assert isinstance(m, FeatureManifest) and m.count == len(ids) and m.dim >= 1
        fs = load_features(m)
        assert fs.features.dtype == np.float32 and np.isfinite(fs.features).all()
        assert fs.ids == ids
