"""er-models: projection, fusion, dialogue context, heads and losses, built by name from TOML.

The public names are imported lazily so `er-models --help` does not pay for torch.
"""

from __future__ import annotations

from er_core.lazy import lazy_exports

__version__ = "0.1.0"

# public name -> the module that defines it
_LAZY = {
    "ContextInputs": "er_models.context",
    "from_padded": "er_models.context",
    "to_padded": "er_models.context",
    "FusionInputs": "er_models.fusion_base",
    "key_mask": "er_models.fusion_base",
    "Groups": "er_models.layout",
    "Layout": "er_models.layout",
    "appearance_codes": "er_models.layout",
    "dialogue_order": "er_models.layout",
    "group_dialogues": "er_models.layout",
    "group_runs": "er_models.layout",
    "groups_by_split": "er_models.layout",
    "make_layout": "er_models.layout",
    "single_groups": "er_models.layout",
    "speaker_slots": "er_models.layout",
    "LoadedRun": "er_models.loading",
    "load_run": "er_models.loading",
    "dist_loss": "er_models.distill",
    "kl_distill": "er_models.distill",
    "balance_loss": "er_models.routing",
    "top_k_gates": "er_models.routing",
    "class_weights": "er_models.losses",
    "ERModel": "er_models.model",
    "Output": "er_models.model",
    "build_model": "er_models.model",
    "count_params": "er_models.model",
    "Part": "er_models.registry",
    "Resolved": "er_models.registry",
    "create": "er_models.registry",
    "names": "er_models.registry",
    "parts": "er_models.registry",
    "register": "er_models.registry",
    "resolve": "er_models.registry",
    "CODE_VERSION": "er_models.spec",
    "MODALITIES": "er_models.spec",
    "ModelSection": "er_models.spec",
    "NetworkSpec": "er_models.spec",
    "SECTIONS": "er_models.spec",
    "TaskSpec": "er_models.spec",
    "check_sections": "er_models.spec",
    "modality_tag": "er_models.spec",
    "parse_modalities": "er_models.spec",
    "parse_network": "er_models.spec",
    "run_network": "er_models.spec",
}
__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_exports(globals(), _LAZY)
