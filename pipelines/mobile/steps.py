"""On-device steps: TFLite variants evaluated and timed through LiteRT, the Core ML variants, and the footprint
report that selects the released variant per platform."""
from __future__ import annotations

import shutil
from typing import Any

import numpy as np

from pipelines.core.config import Settings
from pipelines.core.io import atomic_path, read_json, write_csv, write_json
from pipelines.core.paths import (
    MLFLOW_RECORD_FILE,
    ArtifactPaths,
    coreml_package,
    ort_file,
    tflite_file,
)
from pipelines.core.step import StepResult, records_metrics
from pipelines.data.features import encode_features, encode_labels
from pipelines.data.split_file import open_split
from pipelines.training.keras_model import load_trained
from pipelines.training.scoring import bounded_sample, take_rows
from pipelines.training.tally import Aligned, ModelTally, Tallies, scored_chunks
from pipelines.training.tracking import log_to_run


def _figures(tally: ModelTally, paired: bool) -> dict[str, Any]:
    """Test metrics of one model and its per-group metrics (pipelines.training.metrics); of a variant (`paired`)
    also its agreement with Keras.

    A non-finite output (a broken conversion can return NaN) is scored as a wrong answer and a disagreement, and
    counted: the footprint gate refuses a variant with any."""
    figures = tally.overall()
    if paired:
        figures |= {"agreement_with_keras": tally.agreement(), "max_abs_probability_error": tally.max_error,
                    "non_finite_outputs": tally.non_finite}
    return figures | {"groups": tally.groups()}


def _conversion_inputs(settings: Settings):
    """The trained model, the training split (a frame, or its file above data.batch_rows rows), and the seeded
    representative sample of its rows: what every converter reads (the same sample and test rows, so the runtimes
    are compared on equal terms)."""
    params = settings.params
    model, spec, record = load_trained(settings)
    train = open_split(settings, "train")
    rng = np.random.default_rng(params.split.seed)
    sample = rng.choice(len(train), size=min(params.convert.representative_samples, len(train)), replace=False)
    representative = encode_features(take_rows(train, np.sort(sample)), spec)
    return model, spec, record, train, representative


def _head_rows(settings: Settings) -> int:
    """Test rows the latency timings read (the first ones)."""
    bench = settings.params.benchmark
    return max(bench.runs, bench.batch_size, bench.keras_runs)


def _score_test(settings: Settings, spec, models: dict,
                saved: Aligned | None = None) -> tuple[dict[str, dict[str, Any]], np.ndarray]:
    """Every model's test figures (`_figures`; the others paired with Keras, a model here or its `saved`
    probabilities) and the first test rows encoded. The split is read and scored chunk by chunk, and only counts
    are kept (pipelines.training.tally)."""
    head = _head_rows(settings)
    with Tallies(settings.params.train.threshold, reference="keras") as tallies:
        for chunk in scored_chunks(open_split(settings, "test"), spec, settings.params.data.sensitive_features,
                                   models, saved=saved, intersection=False):
            tallies.add(chunk, head_rows=head)
        return ({name: _figures(tally, name != "keras") for name, tally in tallies.models.items()},
                tallies.head_rows(spec.width))


@records_metrics
def tflite_model(settings: Settings) -> StepResult:
    from pipelines.mobile.download import gzip_bytes
    from pipelines.mobile.latency import host_info, keras_latency, litert_latency
    from pipelines.mobile.litert_quantizer import SENSITIVITY, quantizer_variants, variant_name
    from pipelines.mobile.pruned import precision, pruned_variants
    from pipelines.mobile.sensitivity import choose_precision
    from pipelines.mobile.tflite import (
        check_builtin_ops,
        convert_variants,
        weight_bytes,
    )
    from pipelines.release_format.litert import io_spec, op_names, predict_tflite
    from pipelines.training.train import predict_keras

    params = settings.params
    model, spec, record, train, representative = _conversion_inputs(settings)
    threshold, bound, seed = params.train.threshold, params.data.batch_rows, params.train.seed
    flatbuffers = convert_variants(model, spec.width, params.convert.tflite_variants, representative)
    # above data.batch_rows rows the pruning fine-tune and the int4 calibration read a seeded sample of that many
    pruned, pruning = pruned_variants(model, encode_features(bounded_sample(train, bound, seed), spec), spec.width,
                                      params.convert.prune, representative, params.train.seed)
    del train
    flatbuffers |= quantizer_variants(flatbuffers["float32"], params.convert.litert_quantizer_recipes)
    sensitivity = None
    if SENSITIVITY in params.convert.litert_quantizer_recipes:  # int4 or int8 per layer, judged on validation rows
        validation = bounded_sample(open_split(settings, "validation"), bound, seed)
        flatbuffers[variant_name(SENSITIVITY)], sensitivity = choose_precision(
            flatbuffers["float32"], encode_features(validation, spec), encode_labels(validation, spec), threshold,
            params.convert.int4_max_loss)
        del validation
    flatbuffers |= pruned
    figures, x_head = _score_test(settings, spec, {"keras": lambda x: predict_keras(model, x)} | {
        name: (lambda x, content=content: predict_tflite(content, x)) for name, content in flatbuffers.items()})
    keras: dict[str, Any] = {**figures["keras"], "latency": keras_latency(model, x_head, params.benchmark)}
    report: dict[str, Any] = {"host": host_info(), "benchmark": params.benchmark.model_dump(), "keras": keras,
                              "keras_accuracy": keras["accuracy"], "pruning": pruning, "sensitivity": sensitivity,
                              "variants": {}}
    for name, content in flatbuffers.items():
        ops = op_names(content)
        check_builtin_ops(ops, name)
        latency = litert_latency(content, x_head, params.benchmark)
        report["variants"][name] = {
            "file": tflite_file(name), "size_bytes": len(content), "gzip_bytes": gzip_bytes(content),
            "weight_bytes": weight_bytes(content), "precision": precision(name, pruning),
            **({"sparsity": pruning[name]["sparsity"]} if name in pruning else {}),
            "ops": ops, "builtin_only": True, "io": io_spec(content),
            **figures[name],
            "latency": latency, "keras_to_litert_p50_ratio": keras["latency"]["p50_ms"] / latency["p50_ms"],
        }
    paths = ArtifactPaths(settings.root)
    with atomic_path(paths.tflite_model) as tmp:
        tmp.mkdir()
        for name, content in flatbuffers.items():
            (tmp / tflite_file(name)).write_bytes(content)
    write_json(paths.tflite_report, report)
    metrics = {f"tflite_{n}_{k}": v[k] for n, v in report["variants"].items()
               for k in ("accuracy", "agreement_with_keras", "gzip_bytes")}  # the stage's metrics file: short
    detail = {f"tflite_{n}_size_bytes": v["size_bytes"] for n, v in report["variants"].items()}
    detail |= {f"tflite_{n}_p50_ms": v["latency"]["p50_ms"] for n, v in report["variants"].items()}
    log_to_run(settings, record["run_id"], metrics | detail | {"keras_p50_ms": keras["latency"]["p50_ms"]},
               {"tflite": paths.tflite_model, "reports": paths.tflite_report})
    return StepResult(summary=metrics | {"keras_p50_ms": keras["latency"]["p50_ms"], "path": str(paths.tflite_model)},
                      tables={"variants": tflite_table(report)})


def tflite_table(report: dict[str, Any]) -> str:
    """Markdown: every TFLite variant, measured on this host through LiteRT (one thread)."""
    rows = ["| variant | bytes (weights) | accuracy | AUC | agreement | p50 / p95 µs | Keras/LiteRT p50 | rows/s "
            "(batch) | ops |",
            "|---|---|---|---|---|---|---|---|---|"]
    for name, v in report["variants"].items():
        lat = v["latency"]
        rows.append(f"| {name} | {v['size_bytes']} ({v['weight_bytes']}) | {v['accuracy']:.4f} | {v['auc']:.4f} | "
                    f"{v['agreement_with_keras']:.4f} "
                    f"| {lat['p50_ms'] * 1000:.1f} / {lat['p95_ms'] * 1000:.1f} | "
                    f"{v['keras_to_litert_p50_ratio']:.0f}x "
                    f"| {lat['batch_rows_per_s']:.0f} | {', '.join(v['ops'])} |")
    keras = report["keras"]["latency"]
    return "\n".join(rows) + (f"\n\nKeras single-sample ({keras['method']}): p50 {keras['p50_ms'] * 1000:.0f} µs, "
                              f"p95 {keras['p95_ms'] * 1000:.0f} µs over {keras['runs']} calls. Host: "
                              f"{report['host']['cpu']}.")


@records_metrics
def coreml_model(settings: Settings) -> StepResult:
    import coremltools as ct

    from pipelines.mobile.coreml import (
        WEIGHT_PRECISION,
        compress,
        convert_coreml,
        package_size,
        save_package,
        spec_summary,
    )
    from pipelines.mobile.coreml_reference import reference_predictor
    from pipelines.mobile.download import gzip_folder_bytes
    from pipelines.training.train import predict_keras

    _params, convert = settings.params, settings.params.convert
    model, spec, record = load_trained(settings)
    paths = ArtifactPaths(settings.root)
    variants: dict[str, Any] = {}
    note = ""
    with atomic_path(paths.coreml_model) as tmp:
        tmp.mkdir()
        float16 = tmp / coreml_package("float16")
        save_package(convert_coreml(model, spec.width, convert.coreml_minimum_deployment_target), float16)
        base = ct.models.MLModel(str(float16), skip_model_load=True)
        for name in convert.coreml_variants:
            if name != "float16":
                save_package(compress(base, name, convert.coreml_weight_threshold), tmp / coreml_package(name))
        figures, _ = _score_test(settings, spec, {"keras": lambda x: predict_keras(model, x)} | {
            name: reference_predictor(tmp / coreml_package(name))
            for name in convert.coreml_variants})
        for name in convert.coreml_variants:
            package = tmp / coreml_package(name)
            summary = spec_summary(package)
            note = summary.pop("prediction_note")
            summary.pop("prediction_checked")
            variants[name] = {"package": package.name, "size_bytes": package_size(package),
                              "gzip_bytes": gzip_folder_bytes(package),
                              "precision": WEIGHT_PRECISION[name], "compute_precision": "FLOAT16", **summary,
                              **figures[name]}
        if "float16" not in convert.coreml_variants:
            shutil.rmtree(float16)
    report = {"minimum_deployment_target": convert.coreml_minimum_deployment_target, "compute_precision": "FLOAT16",
              "weight_threshold": convert.coreml_weight_threshold, "prediction_checked": False,
              "prediction_note": note,
              "evaluation": "numpy reference run of each ML Program (pipelines/coreml_reference.py)",
              "variants": variants}
    write_json(paths.coreml_report, report)
    metrics = {f"coreml_{n}_{k}": v[k] for n, v in variants.items() for k in ("size_bytes", "accuracy",
                                                                              "agreement_with_keras")}
    log_to_run(settings, record["run_id"], metrics, {"coreml": paths.coreml_model, "reports": paths.coreml_report})
    return StepResult(summary=metrics | {"minimum_deployment_target": convert.coreml_minimum_deployment_target,
                                         "prediction_note": note, "path": str(paths.coreml_model)},
                      tables={"variants": coreml_table(report)})


def coreml_table(report: dict[str, Any]) -> str:
    """Markdown: every Core ML variant's spec facts and its reference-run metrics."""
    rows = ["| variant | bytes | weights | ops | target | input | output | accuracy* | agreement* |",
            "|---|---|---|---|---|---|---|---|---|"]
    for name, v in report["variants"].items():
        io = [f"{f['name']} {f['dtype']} {f['shape']}" for f in (v["inputs"][0], v["outputs"][0])]
        rows.append(f"| {name} | {v['size_bytes']} | {v['precision']} | {v['op_total']} | {v['deployment_target']} "
                    f"| {io[0]} | {io[1]} | {v['accuracy']:.4f} | {v['agreement_with_keras']:.4f} |")
    return "\n".join(rows) + f"\n\n\\* {report['evaluation']}; {report['prediction_note']}"


@records_metrics
def onnx_model(settings: Settings) -> StepResult:
    from pipelines.mobile.download import gzip_bytes
    from pipelines.mobile.ort import (
        OPERATORS_CONFIG,
        WEIGHT_PRECISION,
        export_onnx,
        onnx_variants,
        op_types,
        ort_latency,
        ort_predictor,
        to_ort_format,
    )
    from pipelines.training.keras_model import saved_predictions

    params = settings.params
    model, spec, record, train, representative = _conversion_inputs(settings)
    del train
    models = onnx_variants(export_onnx(model, spec.width), params.convert.onnx_variants, representative)
    ort, operators = to_ort_format(models)
    # Keras: the probabilities trained_model saved
    figures, x_head = _score_test(settings, spec, {name: ort_predictor(content) for name, content in ort.items()},
                                  saved_predictions(settings, "test", ["keras"]))
    report: dict[str, Any] = {"runtime": _ort_version(), "opset": 17, "format": "ORT (onnxruntime mobile packages)",
                              "variants": {}}
    for name, content in ort.items():
        latency = ort_latency(content, x_head, params.benchmark)
        report["variants"][name] = {
            "file": ort_file(name), "size_bytes": len(content), "gzip_bytes": gzip_bytes(content),
            "onnx_bytes": len(models[name]), "precision": WEIGHT_PRECISION[name], "ops": op_types(models[name]),
            **figures[name],
            "latency": latency,
        }
    paths = ArtifactPaths(settings.root)
    with atomic_path(paths.onnx_model) as tmp:
        tmp.mkdir()
        for name in ort:
            (tmp / f"model_{name}.onnx").write_bytes(models[name])
            (tmp / ort_file(name)).write_bytes(ort[name])
        (tmp / OPERATORS_CONFIG).write_text(operators)  # for a reduced-size onnxruntime build (docs/on-device.md)
    write_json(paths.onnx_report, report)
    metrics = {f"onnx_{n}_{k}": v[k] for n, v in report["variants"].items()
               for k in ("accuracy", "agreement_with_keras", "size_bytes", "gzip_bytes")}
    metrics |= {f"onnx_{n}_p50_ms": v["latency"]["p50_ms"] for n, v in report["variants"].items()}
    log_to_run(settings, record["run_id"], metrics, {"onnx": paths.onnx_model, "reports": paths.onnx_report})
    return StepResult(summary=metrics | {"path": str(paths.onnx_model)}, tables={"variants": onnx_table(report)})


def _ort_version() -> str:
    import onnxruntime

    return f"onnxruntime {onnxruntime.__version__}"


def onnx_table(report: dict[str, Any]) -> str:
    """Markdown: every ONNX Runtime variant (ORT format), measured on this host through onnxruntime (one thread)."""
    rows = ["| variant | ORT bytes (gzip) | accuracy | AUC | agreement | p50 / p95 µs | ops |",
            "|---|---|---|---|---|---|---|"]
    for name, v in report["variants"].items():
        lat = v["latency"]
        rows.append(f"| {name} | {v['size_bytes']} ({v['gzip_bytes']}) | {v['accuracy']:.4f} | {v['auc']:.4f} "
                    f"| {v['agreement_with_keras']:.4f} | {lat['p50_ms'] * 1000:.1f} / {lat['p95_ms'] * 1000:.1f} "
                    f"| {', '.join(v['ops'])} |")
    return "\n".join(rows) + f"\n\nRuntime: {report['runtime']}."


@records_metrics
def footprint_report(settings: Settings) -> StepResult:
    from pipelines.mobile.footprint import (
        LABEL,
        build_footprint,
        footprint_chart,
        footprint_rows,
        footprint_table,
        inline_image,
    )

    paths = ArtifactPaths(settings.root)
    report = build_footprint(read_json(paths.tflite_report), read_json(paths.coreml_report), settings.params.devices,
                             settings.params.gates.on_device, read_json(paths.onnx_report),
                             read_json(paths.fairness_report))
    png = footprint_chart(report)
    write_json(paths.footprint_report, report)
    write_csv(paths.footprint_table, footprint_rows(report))
    with atomic_path(paths.footprint_chart) as tmp:
        tmp.write_bytes(png)
    selected = {p: facts["selected"] for p, facts in report["platforms"].items()}
    summary: dict[str, Any] = {f"{p}_released": name or "none" for p, name in selected.items()}
    for platform, name in selected.items():
        if name:
            summary[f"{platform}_released_bytes"] = report["platforms"][platform]["variants"][name]["size_bytes"]
    int8 = report["platforms"]["android"]["variants"].get("int8")
    if int8 and "size_vs_float" in int8:
        summary["tflite_int8_size_vs_float32"] = round(int8["size_vs_float"], 4)
    metrics = {k: float(v) for k, v in summary.items() if isinstance(v, int | float)}
    log_to_run(settings, read_json(paths.trained_model / MLFLOW_RECORD_FILE)["run_id"], metrics,
               {"reports": paths.footprint_report, "plots": paths.footprint_chart})
    return StepResult(summary=summary | {"estimates": LABEL, "path": str(paths.footprint_report)},
                      tables={"variants": footprint_table(report), "chart": inline_image(png, "size and latency")})
