"""The mitigation sweep trained_model runs: every strength trained at once, measured on the validation rows, and
the deployed strength chosen (pipelines.training.strength) within the fairness limit and the accuracy gates."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from pipelines.core.config import Settings
from pipelines.data.features import FeatureSpec, encode_features, encode_labels, encoded_chunks
from pipelines.data.split_file import SplitFile
from pipelines.training.keras_model import fit_sweep, predict_rows
from pipelines.training.limits import Limits, gated_groups, side_limits


class Sweep(NamedTuple):
    fitted: dict[float, tuple]  # strength -> (model, history)
    points: list[dict[str, Any]]  # validation accuracy and disparity per strength
    chosen: float
    why: str
    sweep_rows: int
    baseline: dict[str, Any] | None  # the fitted reductions baseline (target: baseline), reused by the trade-off
    choice: dict[str, Any]  # within_gates, limit, accuracy_floor, validation_baselines (auto only)


def sweep(settings: Settings, train: pd.DataFrame | SplitFile, validation: pd.DataFrame, spec: FeatureSpec) -> Sweep:
    """Train every sweep strength and choose the deployed one.

    With `fairness.strength: auto` the deployed one is the most accurate on the validation rows whose disparity
    on the constrained grouping is within the fairness gate's limit and whose validation accuracy meets
    gates.keras (logistic regression and the majority class fitted on the sweep's training rows, scored on the
    validation rows). The disparity is measured on the training and validation rows together (groups of at
    least gates.fairness.min_group_size), since a validation split alone is too small for stable group rates; a
    strength whose model answers one class only is never chosen. When no strength meets the limit, the sweep
    tries three doublings of its top strength (trained together); when still none meets both, the least
    disparate is kept and `within_gates` is false: the fairness gate on trained_model stops the run.
    Above `fairness.sample_rows` training rows the sweep trains on a stratified sample (label x constrained
    groups) and the deployed strength is then trained again on every training row.
    """
    from concurrent.futures import ThreadPoolExecutor

    if settings.params.fairness.method == "bound":
        return bound_sweep(settings, train, validation, spec)
    from pipelines.training import strength as choice
    from pipelines.training.metrics import group_metrics, intersection_name
    from pipelines.training.mitigation import constrained_features
    from pipelines.training.streamed import sweep_sample

    params = settings.params
    fairness, threshold = params.fairness, params.train.threshold
    features = constrained_features(fairness, params.data)
    grouping, key = intersection_name(features), choice.DISPARITY[fairness.constraint]
    limit = choice.gate_limit(params.gates.fairness, fairness.constraint, grouping)
    sample = sweep_sample(train, params.data.label, features, fairness)
    y_val = encode_labels(validation, spec)
    rows = pd.concat([sample, validation], ignore_index=True)
    y_rows = encode_labels(rows, spec)
    fitted: dict[float, tuple] = {}
    points: list[dict[str, Any]] = []

    def fit(strengths: list[float]) -> None:
        fitted.update(fit_sweep(settings, sample, validation, spec, strengths))  # all at once: about one training
        for each in strengths:
            (proba,), (on_rows,) = predict_rows([fitted[each][0]], validation, spec), \
                predict_rows([fitted[each][0]], rows, spec)
            facts = group_metrics(y_rows, on_rows, rows[features], threshold,
                                  intersection=True, min_group_size=params.gates.fairness.min_group_size)[grouping]
            points.append({"strength": each, "accuracy": float(np.mean((proba >= threshold) == (y_val > 0.5))),
                           key: facts[key], "grouping": grouping,
                           "one_class": bool(len(np.unique(proba >= threshold)) < 2)})

    auto, baseline, simple = fairness.strength == "auto", None, None
    with ThreadPoolExecutor(max_workers=1) as pool:  # liblinear/lbfgs and TensorFlow both release the GIL
        fitting = pool.submit(baseline_disparity, settings, sample, rows, spec, features) \
            if auto and fairness.target == "baseline" else None
        scoring = pool.submit(validation_baselines, settings, sample, validation, spec) if auto else None
        fit(choice.strengths(fairness))
        if fitting is not None:
            disparity, baseline = fitting.result()
            limit, bound = choice.baseline_limit(limit, disparity)
        simple = scoring.result() if scoring is not None else None
    facts: dict[str, Any] = {}
    if not auto:
        chosen, why = float(fairness.strength), "pinned in params fairness.strength"
    else:
        floor, floor_text = choice.accuracy_floor(params.gates.keras,
                                                  simple["logistic_regression"]["accuracy"],  # type: ignore[index]
                                                  simple["majority_class"]["accuracy"])  # type: ignore[index]
        best, why = choice.choose(points, limit, key, floor, floor_text)
        if best is None and not any(choice.fair(p, limit, key) for p in points):  # stronger may be fairer
            fit(choice.extension(list(fitted)))
            best, why = choice.choose(points, limit, key, floor, floor_text)
        facts = {"within_gates": best is not None, "limit": limit, "accuracy_floor": floor,
                 "validation_baselines": {k: v["accuracy"] for k, v in simple.items()}}  # type: ignore[union-attr]
        if best is None:
            best, why = choice.none_within(points, limit, key, floor, floor_text)
        chosen = best["strength"]
        if fairness.target == "baseline":
            why += f" ({bound})"
    if len(sample) < len(train):
        fitted[chosen] = fit_sweep(settings, train, validation, spec, [chosen])[chosen]
        why += (f"; the sweep trained on a stratified sample of {len(sample)} of the {len(train)} training rows, "
                "the deployed model on all of them")
    return Sweep(fitted, points, chosen, why, len(sample), baseline, facts)


def validation_baselines(settings: Settings, sample: pd.DataFrame, validation: pd.DataFrame,
                         spec: FeatureSpec) -> dict[str, dict[str, Any]]:
    """Logistic regression and the majority class fitted on the sweep's training rows, scored on the validation
    rows: the same baselines the accuracy gate judges on the test rows (pipelines.training.baselines)."""
    from pipelines.training.baselines import baselines

    return baselines(encode_features(sample, spec), encode_labels(sample, spec), encoded_chunks(validation, spec),
                     encode_labels(validation, spec), settings.params.train.threshold, settings.params.train.seed)


def baseline_disparity(settings: Settings, sample: pd.DataFrame, rows: pd.DataFrame, spec: FeatureSpec,
                       features: list[str]) -> tuple[float | None, dict[str, Any]]:
    """The reductions baseline (fit on the sweep's training rows) measured like the sweep points: its disparity on
    the constrained grouping over the sample and validation rows; and the fitted baseline."""
    from pipelines.training import strength as choice
    from pipelines.training.metrics import group_metrics, intersection_name
    from pipelines.training.mitigation import constraint_labels, reductions_baseline

    params = settings.params
    decide, fitted = reductions_baseline(encode_features(sample, spec), encode_labels(sample, spec),
                                         constraint_labels(sample, features), params.fairness)
    facts = group_metrics(encode_labels(rows, spec), decide(encoded_chunks(rows, spec)), rows[features], 0.5,
                          intersection=True, min_group_size=params.gates.fairness.min_group_size)
    return facts[intersection_name(features)][choice.DISPARITY[params.fairness.constraint]], fitted


def expected_point(y: np.ndarray, soft: np.ndarray, labels: np.ndarray, gated: np.ndarray,
                   key: str) -> dict[str, float]:
    """A randomized classifier's expected accuracy on these rows and its expected disparity (`key`) over the gated
    rows' groups, from its probability of answering 1 (fairlearn's definitions of the rates, in expectation)."""
    truth = y > 0.5
    frame = pd.DataFrame({"g": labels[gated], "y": truth[gated], "p": soft[gated]})

    def spread(rows: pd.DataFrame) -> float:
        rates = rows.groupby("g")["p"].mean()
        return float(rates.max() - rates.min())

    if key == "demographic_parity_difference":
        disparity = spread(frame)
    else:
        disparity = max(spread(frame[frame["y"]]), spread(frame[~frame["y"]]))
    return {"accuracy": float(np.mean(np.where(truth, soft, 1 - soft))), key: disparity}


def baseline_fits(settings: Settings, sample: pd.DataFrame, spec: FeatureSpec, features: list[str],
                  folded: bool) -> tuple[dict[str, Any], np.ndarray | None]:
    """The reductions baseline fitted on every training row of the sample (its facts: the fair targets' teacher and
    the trade-off reuse the fit) and, when the held-out rows are cross-validated (`folded`), each fold's rows
    answered by a fit on the other folds (soft decisions, in expectation over its randomized mixture). Needs no
    head: trained_model runs it beside the heads' training."""
    from pipelines.training.bounded import folds
    from pipelines.training.mitigation import constraint_labels, reductions_baseline
    from pipelines.training.mitigation import soft_decisions as soft

    fairness = settings.params.fairness
    x, y, labels = encode_features(sample, spec), encode_labels(sample, spec), constraint_labels(sample, features)
    _, facts = reductions_baseline(x, y, labels, fairness)
    if not folded:
        return facts, None
    fold = folds(sample, [settings.params.data.label, *features], fairness.cv_folds, fairness.seed)
    out_of_fold = np.zeros(len(sample))
    for part in range(fairness.cv_folds):
        inside = fold != part
        _, fitted = reductions_baseline(x[inside], y[inside], labels[inside], fairness)
        out_of_fold[~inside] = soft(fitted["fitted"], x[~inside])
    return facts, out_of_fold


def baseline_point(settings: Settings, held: Any, fits: tuple[dict[str, Any], np.ndarray | None],
                   validation: pd.DataFrame, spec: FeatureSpec, features: list[str],
                   gated: np.ndarray) -> tuple[dict[str, float], dict[str, Any]]:
    """The reductions baseline measured like the heads on the same held-out rows (out of fold in cross-validation,
    as the heads are), in expectation over its randomized mixture; `fits` from `baseline_fits`."""
    from pipelines.training import strength as choice
    from pipelines.training.mitigation import constraint_labels
    from pipelines.training.mitigation import soft_decisions as soft

    facts, out_of_fold = fits
    on_validation = np.concatenate([soft(facts["fitted"], chunk) for chunk in encoded_chunks(validation, spec)])
    probability = on_validation if out_of_fold is None else np.concatenate([out_of_fold, on_validation])
    point = expected_point(encode_labels(held.rows, spec), probability, constraint_labels(held.rows, features), gated,
                           choice.DISPARITY[settings.params.fairness.constraint])
    return point, facts


def other_checks(gates: Any, held: pd.DataFrame | dict[str, Any], test: pd.DataFrame | dict[str, Any], grouping: str,
                 key: str) -> list[Any]:
    """Every limit the test-split fairness gate applies to the Keras model (pipelines.governance.fairness's one
    definition) but the constrained disparity on the constrained grouping, which the bound sets: each gated
    grouping's demographic parity and equalized odds limits. `held` and `test`: the sensitive columns, or their
    groupings already made (a group label per row by grouping name, as metrics.groupings gives them)."""
    from pipelines.core.gates import gate_limits
    from pipelines.training.bound_choice import Check
    from pipelines.training.metrics import groupings

    held_groups = held if isinstance(held, dict) else groupings(held, intersection=True)
    test_groups = test if isinstance(test, dict) else groupings(test, intersection=True)
    names = list(test_groups)
    return [Check(name, figure, limit, held_groups[name], test_groups[name])
            for name in names for _, figure, _, limit in gate_limits(gates, name, names)
            if (name, figure) != (grouping, key)]


def heldout_figure(y: np.ndarray, proba: np.ndarray, check: Any, threshold: float, minimum: int,
                   test_y: np.ndarray | None = None) -> float | None:
    """A check's figure on these rows (the check's labels), over the groups the gate will measure: min_group_size
    test rows, and for the equalized odds difference's true (false) positive rate as many test positives
    (negatives) when `test_y` is given."""
    from pipelines.core.group_rates import spread
    from pipelines.training.metrics import group_metrics, labelled_groups

    kept = np.isin(check.labels, gated_groups(check.test_labels, minimum))
    if not kept.any():
        return None
    facts = group_metrics(y[kept], proba[kept], pd.DataFrame({"g": check.labels[kept]}), threshold)["g"]
    if check.figure != "equalized_odds_difference" or test_y is None:
        return facts[check.figure]
    names = list(facts["groups"])
    if len(names) < 2:
        return None
    measured = labelled_groups(check.test_labels, test_y, names, minimum)  # the groups the gate measures
    gaps = []
    for rate in ("true_positive_rate", "false_positive_rate"):
        values = np.array([np.nan if facts["groups"][g][rate] is None else facts["groups"][g][rate] for g in names])
        gaps.append(spread(values, measured[rate]))
    gap = np.fmax(*gaps)
    return None if np.isnan(gap) else float(gap)


def constrained_figure(y: np.ndarray, proba: np.ndarray, rows: pd.DataFrame, threshold: float,
                       key: str) -> float | None:
    """The constraint's `key` disparity over the intersection of `rows`' columns (the rows of the gated groups)."""
    from pipelines.training.metrics import group_metrics, intersection_name

    facts = group_metrics(y, proba, rows, threshold, intersection=True, min_group_size=1)
    return facts[intersection_name(list(rows.columns))][key]


def over_limit(train: pd.DataFrame, spec: FeatureSpec, features: list[str], groups: list[str], limit: float | None,
               key: str, threshold: float) -> Callable[[np.ndarray, np.ndarray], bool]:
    """Whether a deployed network's answers on the training rows break the limit there while its folds' out-of-fold
    answers on them met it: its `key` disparity over the constrained grouping's gated `groups` exceeds `limit`
    (never, without a limit)."""
    from pipelines.training.mitigation import constraint_labels

    kept = np.isin(constraint_labels(train, features), groups)
    y, rows = encode_labels(train, spec)[kept], train[features][kept]

    def over(proba: np.ndarray) -> bool:
        figure = constrained_figure(y, proba[kept], rows, threshold, key)
        return figure is not None and limit is not None and figure > limit

    def unfit(own: np.ndarray, folds: np.ndarray) -> bool:
        return bool(kept.any()) and over(own) and not over(folds)

    return unfit


FALLBACK_BOUND = 0.1  # the heads' bound when neither fairness.bound nor a gate limit names one


def bound_sweep(settings: Settings, train: pd.DataFrame | SplitFile, validation: pd.DataFrame,
                spec: FeatureSpec) -> Sweep:
    """`fairness.method: bound`: heads trained towards the bound and tighter ones (pipelines.training.bounded),
    measured on held-out rows (cross-validated when the validation split is small), and the deployed head chosen
    by pipelines.training.bound_choice. A grouping whose test groups are too small to gate stops here, before
    any training."""
    from concurrent.futures import ThreadPoolExecutor

    from pipelines.core.errors import PipelineError
    from pipelines.core.gates import gate_limits
    from pipelines.data.split_file import open_split
    from pipelines.training import bound_choice, bounded
    from pipelines.training import strength as choice
    from pipelines.training.metrics import compact_codes, group_metrics, intersection_name, too_small
    from pipelines.training.mitigation import constrained_features, constraint_labels
    from pipelines.training.scoring import score
    from pipelines.training.streamed import sweep_sample
    from pipelines.training.targets import extra_heads, head_name

    params = settings.params
    fairness, threshold, minimum = params.fairness, params.train.threshold, params.gates.fairness.min_group_size
    features = constrained_features(fairness, params.data)
    grouping, key = intersection_name(features), choice.DISPARITY[fairness.constraint]
    gate = choice.gate_limit(params.gates.fairness, fairness.constraint, grouping)
    limit = min([v for v in (fairness.bound, gate) if v is not None], default=None)
    gate_columns = params.data.sensitive_features  # the groupings the fairness gate measures
    # the test rows' labels and group codes, read chunk by chunk and kept a byte a row each through the training
    # (only the groups' sizes by label are used here): as float labels and int32 codes, 20 bytes a test row grew
    # trained_model's peak by 77 MB from 10M to 30M rows
    test_split = open_split(settings, "test")
    on_gate = score(test_split, spec, gate_columns, {})
    test_y, test_codes = on_gate.y > 0.5, compact_codes(on_gate.groups)
    del on_gate
    own = test_codes if grouping in test_codes else compact_codes(score(test_split, spec, features, {}).groups)
    test_labels = pd.Categorical.from_codes(own[grouping][1], own[grouping][0])
    test_groups = {name: pd.Categorical.from_codes(codes, names) for name, (names, codes) in test_codes.items()}
    on_test = group_metrics(test_y, test_y, test_codes, threshold, min_group_size=minimum)
    if gate is not None and grouping not in on_test:  # fairness.features: a narrower intersection
        on_test |= group_metrics(test_y, test_y, own, threshold, min_group_size=minimum)
    for name, facts in on_test.items():  # the gate fails a limited grouping it cannot measure: stop now
        limited = gate_limits(params.gates.fairness, name, list(on_test)) if name != grouping else gate is not None
        if limited and facts["eligible_groups"] < 2:
            raise PipelineError(f"fairness gate: {too_small(name, facts, minimum)}")
    sample = sweep_sample(train, params.data.label, features, fairness)
    bounds = bounded.head_bounds(limit or FALLBACK_BOUND, fairness.bound_fractions)
    # the gate's other limits, which the bound heads also train towards (only their test groups matter here)
    side = side_limits(other_checks(params.gates.fairness, test_groups, test_groups, grouping, key),
                       limit or FALLBACK_BOUND, minimum, gate_columns)
    limits = Limits(gated_groups(test_labels, minimum), side)
    # the reductions baseline's fits and the simple baselines need no head: fitted beside the heads' training
    # (liblinear/lbfgs and TensorFlow both release the GIL)
    folded = bounded.cross_validated(validation, fairness)  # the held-out rows are out of fold
    unfit = over_limit(sample, spec, features, limits.groups, limit, key, threshold) if folded else None
    with ThreadPoolExecutor(max_workers=1) as pool:
        fitting = pool.submit(baseline_fits, settings, sample, spec, features, folded) \
            if fairness.target == "frontier" and limit is not None else None
        held = bounded.heldout(settings, sample, validation, spec, bounds, limits, unfit)
        simple = bounded.logistic_heldout(settings, held, sample, validation, spec)
        fits = fitting.result() if fitting is not None else None
    y_rows, labels = encode_labels(held.rows, spec), constraint_labels(held.rows, features)
    # the disparity over the groups the gate will measure: those with min_group_size test rows (the held-out rows
    # hold more of each group, and a gap over more, smaller groups is a different, larger figure)
    gated = np.isin(labels, gated_groups(test_labels, minimum))
    # the gate's other limits span smaller groups (race, intersections): with the validation split alone as the
    # held-out rows they are measured on the sweep's training rows too, as the penalty sweep measures disparity
    wide = held.rows is validation
    wide_rows = pd.concat([sample, validation], ignore_index=True) if wide else held.rows
    y_wide = encode_labels(wide_rows, spec) if wide else y_rows
    others = other_checks(params.gates.fairness, wide_rows[gate_columns], test_groups, grouping, key)

    def measured(probas: dict[float, np.ndarray], fitted: dict[float, tuple]) -> list[dict[str, Any]]:
        out = []
        on_sample = dict(zip(probas, predict_rows([fitted[b][0] for b in probas], sample, spec))) \
            if wide and others else {}
        for each, proba in probas.items():
            figure = constrained_figure(y_rows[gated], proba[gated], held.rows[features][gated], threshold, key)
            decisions = (proba >= threshold).astype(float)
            broad = np.concatenate([on_sample[each], proba]) if each in on_sample else proba
            checks = [bound_choice.Check(grouping, key, limit, labels, test_labels)] if limit is not None else []
            share = None if limit is None else bound_choice.joint_pass_share(y_rows, decisions, test_y, checks,
                                                                              minimum, fairness.seed)
            joint = None if limit is None or not others else bound_choice.joint_pass_share(
                y_rows, decisions, test_y, checks, minimum, fairness.seed,
                more=((y_wide, (broad >= threshold).astype(float), others),))
            out.append({"strength": each, "bound": each, "accuracy": float(np.mean(decisions == (y_rows > 0.5))),
                        key: figure, "grouping": grouping, "one_class": bool(len(np.unique(decisions)) < 2),
                        "other_limits": [[c.grouping, c.figure, heldout_figure(y_wide, broad, c, threshold, minimum,
                                                                         test_y),
                                          c.limit] for c in others],
                        "pass_share": share, "joint_pass_share": joint})
        return out

    points = measured(held.probas, held.fitted)
    why_limit = ""
    if fairness.target == "baseline" and limit is not None:
        disparity, _ = baseline_disparity(settings, sample, held.rows, spec, features)
        limit, why_limit = choice.baseline_limit(limit, disparity)
    floor, floor_text = choice.accuracy_floor(params.gates.keras, simple["logistic_regression"],
                                              simple["majority_class"])
    reach: dict[str, float] | None = None
    if fits is not None:
        reach, facts = baseline_point(settings, held, fits, validation, spec, features, gated)
        held = held._replace(baseline=held.baseline or facts)

    def pick() -> tuple[dict[str, Any] | None, str, bool, bool]:
        """The head, why, whether it reaches the baseline's point (frontier), and whether that is all the target
        asks (no fair-target heads to try)."""
        if reach is not None:
            best, why = bound_choice.frontier_choice(points, reach, limit, key, floor, floor_text,
                                                     fairness.pass_share, held.how)
            if best is not None:
                return best, why, True, True
        best, why = bound_choice.choose(points, limit, key, floor, floor_text, fairness.pass_share, held.how)
        # confident: sure of the bound and within the gate's other limits on the rows (their joint share is
        # pessimistic on small groups, so it does not decide whether more heads train)
        confident = best is not None and (limit is None or (best["pass_share"] >= fairness.pass_share
                                                             and not bound_choice.unmet(best)))
        # the fair-target heads are there to reach a baseline point no head comes near in accuracy and disparity
        # (401(k): bound heads at DPD 0.03 against the baseline's 0.007); a head that is near it but misses the
        # gate's joint pass share is not helped by them (its shortfall is the other groupings' noise)
        near = reach is None or bool(bound_choice.reaching(points, reach, key, bound_choice.REACH_ACCURACY))
        return best, why, False, confident and near

    best, why, reached, enough = pick()
    if fairness.fair_targets and not enough:  # the fair-target heads, trained only where the bound heads fall short
        extra = bounded.heldout(settings, sample, validation, spec, extra_heads(fairness.constraint), limits, unfit)
        held = held._replace(fitted=held.fitted | extra.fitted, baseline=extra.baseline or held.baseline,
                             own=held.own + extra.own)
        points += measured(extra.probas, extra.fitted)
        bounds = bounds + list(extra.probas)
        best, why, reached, enough = pick()
    if reach is not None and not reached and best is not None:
        at = (f"the reductions baseline's point on {held.how} (accuracy {reach['accuracy']:.4f}, "
              f"{key.replace('_', ' ')} {reach[key]:.4f})" if reach[key] is not None else
              "the reductions baseline's point (its disparity is undefined)")
        why += (f"; heads come near {at} but none passes every limit of the gate in fairness.pass_share of "
                "simulated test splits: the most accurate within the gate's limits is deployed"
                if bound_choice.reaching(points, reach, key, bound_choice.REACH_ACCURACY) else
                f"; no network reaches {at}: the most accurate within the gate's limits is deployed")
    if held.own:
        why += (f"; judged on the deployed network's own answers on the training rows, not its folds' (one class, "
                f"or over the limit on the rows it was fitted to, where its folds were within it): "
                f"{', '.join(head_name(b) for b in held.own)}")
    within = best is not None
    if best is None:
        best, why = bound_choice.stop_line(points, limit, key, floor, floor_text, held.how, simple,
                                           params.gates.keras.min_gain_over_majority, reach)
    if why_limit:
        why += f" ({why_limit})"
    chosen, fitted = best["bound"], held.fitted
    if len(sample) < len(train) and isinstance(train, SplitFile) and chosen > bounded.UNCONSTRAINED:
        why += (f"; the heads trained on a stratified sample of {len(sample)} of the {len(train)} training rows; "
                "the deployed head learns fair targets fitted on that sample, so it is kept as trained on it")
    elif len(sample) < len(train):
        fitted[chosen] = bounded.fit_heads(settings, train, validation, spec, [chosen], limits=limits)[0]
        why += (f"; the heads trained on a stratified sample of {len(sample)} of the {len(train)} training rows, "
                "the deployed model on all of them")
    facts = {"within_gates": within, "limit": limit, "accuracy_floor": floor, "validation_baselines": simple,
             "judged_on_own_answers": list(held.own),
             "bound": chosen, "bounds": bounds, "heldout": held.how, "baseline_point": reach,
             "side_limits": [[s.grouping, s.constraint, round(s.ratio, 6)] for s in side]}
    return Sweep(fitted, points, chosen, why, len(sample), held.baseline, facts)
