"""er-core: the wire protocol and plumbing every er tool shares (no torch)."""

from er_core.checks import nonfinite_rows, require_finite, require_float32_range
from er_core.cli import info, run, warn
from er_core.config import Config, load_config, merge_sources, parse_override, to_dict, validate
from er_core.errors import ErError, UsageError, from_os_error
from er_core.extras import require
from er_core.features import FeatureSet, aligned_features, load_features, read_index
from er_core.files import atomic_dir, atomic_path, sha256_bytes, sha256_file, write_bytes_atomic
from er_core.ids import canonical_json, content_id, output_dir
from er_core.locks import folder_lock, is_locked
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
from er_core.options import Quiet, Threads, app_settings, version_option, versions
from er_core.paths import confine, is_relative_inside, within
from er_core.progress import Progress, duration
from er_core.ranges import (
    Dropout,
    FiniteFloat,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    Probability,
    check_options,
)
from er_core.recipe import differing, flatten, recipe
from er_core.run_folder import PREDICTIONS_KEY, read_run, run_classes
from er_core.stream import (
    Envelope,
    find,
    read_messages,
    read_stream,
    to_envelopes,
    write_stream,
)
from er_core.tensors import read_tensors, write_tensors
from er_core.threads import default_threads, set_threads

__version__ = "0.1.0"

__all__ = [
    "KINDS",
    "PREDICTIONS_KEY",
    "SCHEMA_VERSION",
    "Config",
    "DatasetManifest",
    "Dropout",
    "Envelope",
    "EpochRecord",
    "ErError",
    "EvalManifest",
    "FeatureManifest",
    "FeatureSet",
    "FileRef",
    "FiniteFloat",
    "MediaIssue",
    "Message",
    "NonNegativeFloat",
    "NonNegativeInt",
    "PositiveFloat",
    "PositiveInt",
    "PredictionManifest",
    "Probability",
    "Progress",
    "Quiet",
    "RunManifest",
    "TaskInfo",
    "TaskScores",
    "Threads",
    "UsageError",
    "accuracy",
    "aligned_features",
    "app_settings",
    "atomic_dir",
    "atomic_path",
    "canonical_json",
    "check_options",
    "confine",
    "confusion_matrix",
    "content_id",
    "default_threads",
    "differing",
    "duration",
    "find",
    "flatten",
    "folder_lock",
    "from_os_error",
    "info",
    "is_locked",
    "is_relative_inside",
    "load_config",
    "load_features",
    "macro_f1",
    "merge_sources",
    "nonfinite_rows",
    "output_dir",
    "parse_override",
    "per_class_f1",
    "per_class_precision",
    "per_class_recall",
    "read_index",
    "read_messages",
    "read_run",
    "read_stream",
    "read_tensors",
    "recipe",
    "require",
    "require_finite",
    "require_float32_range",
    "run",
    "run_classes",
    "set_threads",
    "sha256_bytes",
    "sha256_file",
    "support",
    "to_dict",
    "to_envelopes",
    "validate",
    "version_option",
    "versions",
    "warn",
    "weighted_f1",
    "within",
    "write_bytes_atomic",
    "write_stream",
    "write_tensors",
]
