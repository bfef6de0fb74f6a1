"""Pruned TFLite variants: the trained network pruned to each convert.prune.sparsity, then converted like the
dense one (pipelines.mobile.tflite), so every later gate treats them as any other variant."""
from __future__ import annotations

from typing import Any

import numpy as np

from pipelines.core.config import PruneConfig
from pipelines.mobile.prune import prune_model, pruned_name
from pipelines.mobile.tflite import WEIGHT_PRECISION, convert_variants


def pruned_variants(model, x_train: np.ndarray, width: int, config: PruneConfig, representative: np.ndarray,
                    seed: int) -> tuple[dict[str, bytes], dict[str, dict[str, Any]]]:
    """Flatbuffers named pruned<pct>_<variant> and, per name, the pruning facts (sparsity reached, schedule)."""
    from pipelines.training.train import predict_keras

    if not config.sparsity:
        return {}, {}
    soft = predict_keras(model, x_train)  # the fine-tune learns the dense parent's answers
    flatbuffers: dict[str, bytes] = {}
    facts: dict[str, dict[str, Any]] = {}
    for target in config.sparsity:
        pruned, about = prune_model(model, x_train, soft, target, config, seed)
        for variant, content in convert_variants(pruned, width, config.variants, representative).items():
            name = pruned_name(target, variant)
            flatbuffers[name], facts[name] = content, {**about, "parent": variant}
    return flatbuffers, facts


def precision(name: str, pruning: dict[str, dict[str, Any]]) -> str:
    """What a variant stores: the TFLite variant's or ai-edge-quantizer recipe's precision, with the sparsity of a
    pruned one."""
    if name.startswith("aeq_"):
        from pipelines.mobile.litert_quantizer import PRECISION

        return PRECISION[name.removeprefix("aeq_")]
    if name not in pruning:
        return WEIGHT_PRECISION[name]
    about = pruning[name]
    return f"{WEIGHT_PRECISION[about['parent']]}; {about['sparsity']:.0%} of Dense weights zero (magnitude-pruned)"
