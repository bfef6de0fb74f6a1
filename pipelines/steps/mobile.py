"""On-device steps: TFLite variants evaluated through LiteRT, and the Core ML package."""
from __future__ import annotations

import numpy as np

from pipelines.config import Settings
from pipelines.features import encode_features, encode_labels
from pipelines.io import atomic_path, write_json
from pipelines.metrics import agreement, classification_metrics, group_metrics
from pipelines.paths import ArtifactPaths
from pipelines.steps import StepResult
from pipelines.steps.model import load_split, load_trained
from pipelines.tracking import log_to_run

TFLITE_VARIANTS = ("float32", "int8")
COREML_PACKAGE = "model.mlpackage"


def tflite_file(name: str) -> str:
    return f"model_{name}.tflite"


def tflite_model(settings: Settings) -> StepResult:
    from pipelines.tflite import check_builtin_ops, convert_float32, convert_int8, io_spec, op_names, predict_tflite
    from pipelines.train import predict_keras

    model, spec, record = load_trained(settings)
    train, test = load_split(settings, "train"), load_split(settings, "test")
    rng = np.random.default_rng(settings.params.split.seed)
    sample = rng.choice(len(train), size=min(settings.params.convert.representative_samples, len(train)), replace=False)
    representative = encode_features(train.iloc[np.sort(sample)], spec)
    x_test, y_test = encode_features(test, spec), encode_labels(test, spec)
    threshold = settings.params.train.threshold
    keras_proba = predict_keras(model, x_test)
    flatbuffers = {"float32": convert_float32(model, spec.width), "int8": convert_int8(model, spec.width, representative)}
    report: dict = {"variants": {}, "keras_accuracy": classification_metrics(y_test, keras_proba, threshold)["accuracy"]}
    for name, content in flatbuffers.items():
        ops = op_names(content)
        check_builtin_ops(ops, name)
        proba = predict_tflite(content, x_test)
        report["variants"][name] = {
            "file": tflite_file(name),
            "size_bytes": len(content),
            "ops": ops,
            "io": io_spec(content),
            "agreement_with_keras": agreement(proba, keras_proba, threshold),
            "max_abs_probability_error": float(np.abs(proba - keras_proba).max()),
            **classification_metrics(y_test, proba, threshold),
            "groups": group_metrics(y_test, proba, test[settings.params.data.sensitive_features], threshold),
        }
    paths = ArtifactPaths(settings.root)
    with atomic_path(paths.tflite_model) as tmp:
        tmp.mkdir()
        for name, content in flatbuffers.items():
            (tmp / tflite_file(name)).write_bytes(content)
    write_json(paths.tflite_report, report)
    metrics = {f"tflite_{n}_{k}": v[k] for n, v in report["variants"].items()
               for k in ("accuracy", "agreement_with_keras", "size_bytes")}
    log_to_run(settings, record["run_id"], metrics, {"tflite": paths.tflite_model, "reports": paths.tflite_report})
    rows = ["| variant | size (bytes) | accuracy | AUC | agreement | ops |", "|---|---|---|---|---|---|"]
    rows += [f"| {n} | {v['size_bytes']} | {v['accuracy']:.4f} | {v['auc']:.4f} | {v['agreement_with_keras']:.4f} "
             f"| {', '.join(v['ops'])} |" for n, v in report["variants"].items()]
    return StepResult(summary=metrics | {"path": str(paths.tflite_model)}, tables={"variants": "\n".join(rows)})


def coreml_model(settings: Settings) -> StepResult:
    from pipelines.coreml import convert_coreml, spec_summary
    from pipelines.hashing import tree_files

    model, spec, record = load_trained(settings)
    mlmodel = convert_coreml(model, spec.width, settings.params.convert.coreml_minimum_deployment_target)
    paths = ArtifactPaths(settings.root)
    with atomic_path(paths.coreml_model) as tmp:
        tmp.mkdir()
        mlmodel.save(str(tmp / COREML_PACKAGE))
        package = tmp / COREML_PACKAGE
        size = sum((package / f).stat().st_size for f in tree_files(package))
    summary = spec_summary(paths.coreml_model / COREML_PACKAGE) | {
        "size_bytes": size,
        "minimum_deployment_target": settings.params.convert.coreml_minimum_deployment_target,
        "compute_precision": "FLOAT16",
    }
    write_json(paths.coreml_report, summary)
    log_to_run(settings, record["run_id"], {"coreml_size_bytes": size},
               {"coreml": paths.coreml_model, "reports": paths.coreml_report})
    return StepResult(summary={k: summary[k] for k in ("size_bytes", "op_total", "minimum_deployment_target",
                                                       "prediction_note")} | {"path": str(paths.coreml_model)})
