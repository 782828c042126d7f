"""Content addressing: canonical JSON and the ids derived from it."""

from __future__ import annotations

import hashlib

from er_core import FileRef, canonical_json, content_id, output_dir

OBJ = {"b": 1, "a": [1, 2.5], "c": {"y": None, "x": "é"}}
# sorted keys at every level, no spaces, UTF-8 (not \u escapes)
CANONICAL = b'{"a":[1,2.5],"b":1,"c":{"x":"\xc3\xa9","y":null}}'


def test_canonical_json_is_sorted_and_compact():
    assert canonical_json(OBJ) == CANONICAL


def test_canonical_json_ignores_dict_order():
    shuffled = {"c": {"x": "é", "y": None}, "a": [1, 2.5], "b": 1}
    assert canonical_json(shuffled) == canonical_json(OBJ)
    # list order is content, not layout
    assert canonical_json({"a": [2.5, 1]}) != canonical_json({"a": [1, 2.5]})


def test_content_id_is_sha256_of_canonical_json():
    assert content_id(OBJ) == hashlib.sha256(CANONICAL).hexdigest()
    # pinned: a change here renames every output folder ever written
    assert content_id(OBJ) == "e271ebd180ccf888f003fa0730bee70ea0d42d1a27e99e44644f0a7394e2afde"


def test_content_id_changes_with_any_value():
    assert content_id({**OBJ, "b": 2}) != content_id(OBJ)
    assert content_id({**OBJ, "d": None}) != content_id(OBJ)


def test_structs_hash_like_their_fields():
    ref = FileRef(path="/x", sha256="ab", bytes=3)
    assert canonical_json(ref) == b'{"bytes":3,"path":"/x","sha256":"ab"}'
    assert content_id(ref) == content_id({"sha256": "ab", "path": "/x", "bytes": 3})


def test_output_dir():
    cid = "0123456789abcdef" * 4
    assert output_dir("out", "er-data", cid) == "out/er-data/0123456789ab"
    assert output_dir("out/", "er-data", cid) == "out/er-data/0123456789ab"
