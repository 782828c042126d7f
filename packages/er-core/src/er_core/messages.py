"""The wire protocol: every message a tool reads or writes, as frozen msgspec Structs.

Messages form a tagged union on `kind`. Rules (schema evolution):
- a new field always has a default, and a field's type never changes;
- wire messages accept unknown fields, so an older tool reads a newer message;
- messages reference files by path and sha256, they never inline tensors.
A kind this version does not know is passed through unchanged by `er_core.stream`.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

SCHEMA_VERSION = 1


class FileRef(msgspec.Struct, frozen=True, kw_only=True):
    """A file another tool will read: absolute path, content hash and size."""

    path: str
    sha256: str
    bytes: int = 0


class Message(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind"):
    """Base of every wire message. `id` is the content id of what made it (see er_core.ids)."""

    schema: int = SCHEMA_VERSION
    id: str = ""
    tool: str = ""  # "er-data 0.1.0"


class TaskInfo(msgspec.Struct, frozen=True, kw_only=True):
    """One prediction target of a dataset and where the table holds it.

    Classification: `column` holds the class index (int) and `column + "_name"` the class name.
    Regression: `column` holds the float target and `classes` is empty.
    """

    type: Literal["classification", "regression"]
    column: str
    classes: list[str] = []


class MediaIssue(msgspec.Struct, frozen=True, kw_only=True):
    """A media file a row points to that is missing or does not decode."""

    utterance: str
    path: str
    problem: str


class DatasetManifest(Message, frozen=True, kw_only=True, tag="dataset"):
    """An utterance table (Parquet) and what it holds; written by `er-data prepare`."""

    dataset: str
    task: str
    task_type: Literal["classification", "regression"] = "classification"
    classes: list[str] = []
    label_column: str = ""
    tasks: dict[str, TaskInfo] = {}
    splits: dict[str, int] = {}
    class_counts: dict[str, dict[str, int]] = {}
    table: FileRef
    source_root: str = ""
    modalities: list[str] = []  # of "text", "audio", "video"
    adapter: str = ""
    adapter_version: str = ""
    config: dict[str, Any] = {}
    inputs: dict[str, str] = {}  # source file (relative to source_root) -> sha256
    media_issues: list[MediaIssue] = []
    # media and data paths may be links that lead out of source_root (`prepare --follow-links`);
    # every reader of the table honours the same choice
    follow_links: bool = False


class FeatureManifest(Message, frozen=True, kw_only=True, tag="features"):
    """Pooled per-utterance features of one modality; written by `er-features extract/import`.

    The vectors live in SafeTensors shards (`shards`, in the feature cache). `index` is a small
    SafeTensors file mapping each covered utterance, in table order, to (shard, row) and its
    fallback flags; the utterance ids sit in its metadata. Read it with `er_core.load_features`.
    """

    modality: Literal["text", "audio", "video"]
    encoder: str  # as the user named it: alias, hub id or folder
    encoder_source: str = ""  # where the weights came from (package, folder, hub, import)
    weights_sha256: str = ""
    config: dict[str, Any] = {}  # resolved preprocessing config
    cache_key: str = ""  # sha256 of (weights, config): names the cache folder of the shards
    dim: int
    extras: dict[str, int] = {}  # extra per-utterance tensors (e.g. logits) -> width
    dataset: str = ""  # id of the DatasetManifest the features belong to
    table_sha256: str = ""
    count: int = 0  # utterances covered
    index: FileRef
    shards: list[FileRef] = []
    fallbacks: dict[str, int] = {}  # flag name -> rows with that fallback
    part: str = ""  # "i/n" for a --shard slice; "" when the whole dataset is covered


class EpochRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One training epoch: mean train loss, learning rate at its end, dev metrics, wall time."""

    epoch: int
    train_loss: float
    lr: float = 0.0
    dev: dict[str, float] = {}
    seconds: float = 0.0
    losses: dict[str, float] = {}  # each objective's weighted train loss, mean per batch


class RunManifest(Message, frozen=True, kw_only=True, tag="run"):
    """A training run: what it read, how it was configured, how each epoch went, and the metrics
    and predictions of the weights selected on dev; written by `er-train`.

    Metric names are `<task>/<metric>` (e.g. `emotion/weighted_f1`). `predictions` maps a split
    ("dev", "test") to a SafeTensors file of per-utterance outputs; ids sit in its metadata.
    """

    dataset: str  # id of the DatasetManifest
    dataset_name: str = ""
    task: str = ""  # the main task (selection and the folder name)
    tasks: list[str] = []
    classes: dict[str, list[str]] = {}  # task -> class names ([] for regression)
    modalities: list[str] = []
    features: dict[str, str] = {}  # modality -> FeatureManifest id
    encoders: dict[str, str] = {}  # modality -> encoder as named in its FeatureManifest
    encoder_keys: dict[str, str] = {}  # modality -> the FeatureManifest's cache_key
    dims: dict[str, int] = {}  # modality -> feature width
    config: dict[str, Any] = {}  # resolved training config
    network_hash: str = ""
    recipe_hash: str = ""  # id of everything but the seed: the run folder's hash (er-train)
    params: int = 0
    seed: int = 0
    run_dir: str = ""
    status: Literal["complete", "running"] = "complete"
    select: str = ""  # the dev metric that chose the weights, e.g. "emotion/weighted_f1"
    best_epoch: int = -1
    epochs: list[EpochRecord] = []
    dev: dict[str, float] = {}
    test: dict[str, float] = {}
    predictions: dict[str, FileRef] = {}
    weights: FileRef | None = None  # the selected weights (SafeTensors)
    device: str = "cpu"
    seconds: float = 0.0


class TaskScores(msgspec.Struct, frozen=True, kw_only=True):
    """Scores of one task on one split.

    Classification: `metrics` has accuracy, weighted_f1, macro_f1; `per_class` maps each class
    name to its precision, recall, f1 and support; `confusion[i][j]` counts utterances of TRUE
    class i predicted as class j. Regression: `metrics` has the regression scores (see
    er-eval's README for their definitions) and `per_class`/`confusion` are empty.
    """

    task: str
    type: Literal["classification", "regression"]
    classes: list[str] = []
    n: int = 0
    scale: str = ""  # regression bins: "sims" ([-1, 1]) or "mosi" ([-3, 3]); "" otherwise
    metrics: dict[str, float] = {}
    per_class: dict[str, dict[str, float]] = {}
    confusion: list[list[int]] = []


class EvalManifest(Message, frozen=True, kw_only=True, tag="eval"):
    """The scores of one run's predictions; written by `er-eval score`.

    `scores` maps a split ("dev", "test") to task -> TaskScores, computed from the run's
    prediction files (named with their sha256 in `predictions`).
    """

    run: str  # id of the RunManifest scored
    run_dir: str = ""
    dataset: str = ""
    scores: dict[str, dict[str, TaskScores]] = {}
    predictions: dict[str, FileRef] = {}


class PredictionManifest(Message, frozen=True, kw_only=True, tag="predictions"):
    """Per-utterance predictions of a trained run on a dataset; written by `er-eval predict`.

    `table` is a Parquet or CSV file (`er-eval predict --format`): `id`, `split`, then per task
    `pred_<task>` (predicted class name, or value), `gold_<task>` (the gold class name, where the
    table has labels) and `<task>.p.<class>` (probabilities), in the dataset table's order.
    """

    run: str  # id of the RunManifest whose weights predicted
    dataset: str  # id of the DatasetManifest predicted on
    features: dict[str, str] = {}  # modality -> FeatureManifest id
    tasks: list[str] = []
    count: int = 0
    table: FileRef


# Every kind this version knows; later tools add theirs here.
AnyMessage = DatasetManifest | FeatureManifest | RunManifest | EvalManifest | PredictionManifest

KINDS: dict[str, type[Message]] = {
    "dataset": DatasetManifest,
    "features": FeatureManifest,
    "run": RunManifest,
    "eval": EvalManifest,
    "predictions": PredictionManifest,
}
