"""Encoder registry: a name -> the folder of weights, the family that reads it, and its hash.

A name is an alias (offline from the registry package that ships its weights, else its hub id),
a local folder, or a Hugging Face id (needs a hub connection). Families: `hf-text` (any
transformers text encoder), `whisper` (a transformers Whisper folder), `face-cnn` (er's own
expression-CNN folder: config.json with an "architecture" + model.safetensors).
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from pathlib import Path

from er_core import ErError

from er_features.once import RECORD, folder_sha256, verify_folder
from er_features.packaged import OFFLINE  # the distributions that ship each model's weights

FAMILY_MODALITY = {"hf-text": "text", "whisper": "audio", "face-cnn": "video"}


@dataclass(frozen=True)
class Alias:
    name: str
    family: str
    hub_id: str  # "" when the weights exist only as a registry package
    offline: str  # "module:function" that returns the prepared folder, given the cache
    about: str
    dists: tuple[str, ...] = ()  # registry packages that ship the weights


ALIASES: dict[str, Alias] = {
    a.name: a
    for a in [
        Alias(
            "minilm",
            "hf-text",
            "sentence-transformers/all-MiniLM-L6-v2",
            "er_features.packaged:minilm",
            "all-MiniLM-L6-v2, BERT 6 layers, d=384",
            OFFLINE["minilm"],
        ),
        Alias(
            "mpnet-base",
            "hf-text",
            "sentence-transformers/all-mpnet-base-v2",
            "er_features.packaged:mpnet_base",
            "all-mpnet-base-v2, MPNet 12 layers, d=768",
            OFFLINE["mpnet-base"],
        ),
        Alias(
            "whisper-tiny.en",
            "whisper",
            "openai/whisper-tiny.en",
            "er_features.packaged:whisper_tiny_en",
            "Whisper tiny.en encoder, d=384",
            OFFLINE["whisper-tiny.en"],
        ),
        Alias(
            "whisper-base",
            "whisper",
            "openai/whisper-base",
            "er_features.packaged:whisper_base",
            "Whisper base encoder, d=512",
            OFFLINE["whisper-base"],
        ),
        Alias(
            "fer-xception",
            "face-cnn",
            "",
            "er_features.face_cnn:fer_xception",
            "FER2013 mini-Xception (fer), 64x64 grey, 7 expressions",
            ("fer",),
        ),
        Alias(
            "pyemotion",
            "face-cnn",
            "",
            "er_features.face_cnn:pyemotion",
            "FER2013 NetworkV2 (PyEmotion), 48x48 grey, 7 expressions",
            ("PyEmotion",),
        ),
    ]
}

DEFAULTS = {"text": "minilm", "audio": "whisper-tiny.en", "video": "fer-xception"}


@dataclass(frozen=True)
class Resolved:
    name: str  # as given
    family: str
    modality: str
    folder: Path
    source: str  # where the weights came from, for the manifest
    weights_sha256: str


def _call(ref: str, cache: Path) -> Path:
    module, _, func = ref.partition(":")
    return getattr(importlib.import_module(module), func)(cache)


def offline_available(alias: Alias) -> bool:
    """Are the alias's registry packages installed? (cheap: nothing is unpacked)"""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        for dist in alias.dists:
            distribution(dist)
    except PackageNotFoundError:
        return False
    return True


def family_of(folder: Path) -> str:
    """Which family reads a local folder, from its config.json."""
    cfg_path = folder / "config.json"
    if not cfg_path.is_file():
        raise ErError(
            "encoder folder has no config.json",
            at=str(folder),
            hint="name a transformers model folder or an er face-CNN folder",
        )
    try:
        cfg = json.loads(cfg_path.read_text())
    except ValueError as e:
        raise ErError(f"config.json is not JSON ({e})", at=str(cfg_path), hint="") from None
    if "architecture" in cfg and "model_type" not in cfg:
        return "face-cnn"
    return "whisper" if cfg.get("model_type") == "whisper" else "hf-text"


def _weights_hash(folder: Path, cache: Path) -> str:
    return verify_folder(folder) if (folder / RECORD).is_file() else folder_sha256(folder, cache)


def resolve(name: str, modality: str, cache: Path) -> Resolved:
    """Find the weights for `name`; errors name the encoder and say what would fix it."""
    alias = ALIASES.get(name)
    if alias is not None:
        if offline_available(alias):
            folder = _call(alias.offline, cache)
            source = f"registry package for {name}"
        elif alias.hub_id:
            folder, source = _from_hub(alias.hub_id, name), f"hub {alias.hub_id}"
        else:
            raise ErError(
                f"encoder '{name}' ships only as a registry package, which is not installed",
                at=name,
                hint=f"run `er-features weights install {name}`, or name a model folder",
            )
        family = alias.family
    elif Path(name).expanduser().is_dir():
        folder = Path(name).expanduser().resolve()
        family, source = family_of(folder), f"folder {folder}"
    elif _looks_like_hub_id(name):
        folder, source = _from_hub(name, name), f"hub {name}"
        family = family_of(folder)
    else:
        raise ErError(
            f"unknown encoder '{name}'",
            at=name,
            hint=f"use an alias ({', '.join(ALIASES)}), a model folder or a Hugging Face id; "
            "er-features encoders lists them",
        )
    got = FAMILY_MODALITY[family]
    if got != modality:
        raise ErError(
            f"encoder '{name}' is a {got} encoder, not {modality}",
            at=name,
            hint=f"use --modality {got}, or a {modality} encoder such as {DEFAULTS[modality]}",
        )
    return Resolved(name, family, modality, folder, source, _weights_hash(folder, cache))


def _looks_like_hub_id(name: str) -> bool:
    org, sep, repo = name.partition("/")
    return bool(sep and org and repo and "/" not in repo and not name.startswith((".", "~")))


def _from_hub(hub_id: str, name: str) -> Path:
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(hub_id))
    except Exception as e:  # offline, unknown repo, no permission: all end the same way
        raise ErError(
            f"cannot fetch encoder '{name}' from the Hugging Face hub ({type(e).__name__})",
            at=hub_id,
            hint="this machine may be offline: use an alias whose package is installed "
            "(er-features encoders), or a local folder",
        ) from None


def listing() -> list[dict[str, str]]:
    """Every alias with its family, hub id and whether it is available offline here."""
    rows = []
    for a in ALIASES.values():
        here = offline_available(a)
        rows.append(
            {
                "name": a.name,
                "modality": FAMILY_MODALITY[a.family],
                "offline": "yes" if here else "no",
                "hub": a.hub_id or "-",
                "about": a.about,
            }
        )
    return rows
