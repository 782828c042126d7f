"""er-core: the wire protocol and plumbing every er tool shares (no torch)."""

from er_core.cli import info, run, warn
from er_core.config import Config, load_config, merge_sources, parse_override, to_dict, validate
from er_core.errors import ErError, UsageError
from er_core.features import FeatureSet, aligned_features, load_features, read_index
from er_core.files import atomic_dir, atomic_path, sha256_bytes, sha256_file, write_bytes_atomic
from er_core.ids import canonical_json, content_id, output_dir
from er_core.messages import (
    KINDS,
    SCHEMA_VERSION,
    DatasetManifest,
    EpochRecord,
    EvalManifest,
    FeatureManifest,
    FileRef,
    MediaIssue,
    Message,
    PredictionManifest,
    RunManifest,
    TaskInfo,
    TaskScores,
)
from er_core.metrics import (
    accuracy,
    confusion_matrix,
    macro_f1,
    per_class_f1,
    per_class_precision,
    per_class_recall,
    support,
    weighted_f1,
)
from er_core.stream import Envelope, find, read_stream, write_stream
from er_core.tensors import read_tensors, write_tensors

__version__ = "0.1.0"

__all__ = [
    "KINDS",
    "SCHEMA_VERSION",
    "Config",
    "DatasetManifest",
    "Envelope",
    "EpochRecord",
    "ErError",
    "EvalManifest",
    "FeatureManifest",
    "FeatureSet",
    "FileRef",
    "MediaIssue",
    "Message",
    "PredictionManifest",
    "RunManifest",
    "TaskInfo",
    "TaskScores",
    "UsageError",
    "accuracy",
    "aligned_features",
    "atomic_dir",
    "atomic_path",
    "canonical_json",
    "confusion_matrix",
    "content_id",
    "find",
    "info",
    "load_config",
    "load_features",
    "macro_f1",
    "merge_sources",
    "output_dir",
    "parse_override",
    "per_class_f1",
    "per_class_precision",
    "per_class_recall",
    "read_index",
    "read_stream",
    "read_tensors",
    "run",
    "sha256_bytes",
    "sha256_file",
    "support",
    "to_dict",
    "validate",
    "warn",
    "weighted_f1",
    "write_bytes_atomic",
    "write_stream",
    "write_tensors",
]
