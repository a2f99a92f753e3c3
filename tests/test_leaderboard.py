"""Leaderboards built from run directories that the tests fabricate in docs/results-format.md."""

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix, f1_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold

from resectbench.leaderboard import LeaderboardError, build_leaderboard, load_runs
from resectbench.vocabulary import PROB_COLUMNS

CLASSES = ("resectable", "borderline", "locally_advanced")
VESSELS = ("sma", "celiac_trunk", "common_hepatic_artery", "smv", "portal_vein", "ivc")


def _metrics(y, proba):
    pred = proba.argmax(1)
    present = [c for c in range(3) if 0 < (y == c).sum() < len(y)]
    out = {
        "n_cases": len(y),
        "auc_ovr_macro": float(np.mean([roc_auc_score(y == c, proba[:, c]) for c in present])),
        "macro_f1": f1_score(y, pred, labels=[0, 1, 2], average="macro", zero_division=0),
        "accuracy": accuracy_score(y, pred),
        "balanced_accuracy": balanced_accuracy_score(y, pred),
    }
    out.update(
        {f"f1_{n}": s for n, s in zip(CLASSES, f1_score(y, pred, labels=[0, 1, 2], average=None, zero_division=0))}
    )
    out["confusion_matrix"] = confusion_matrix(y, pred, labels=[0, 1, 2]).tolist()
    out["ece"] = float(abs(proba.max(1).mean() - (pred == y).mean()))
    out["brier"] = float(np.mean(np.sum((proba - np.eye(3)[y]) ** 2, axis=1)))
    return out


def fabricate_run(
    root,
    models,
    *,
    n=60,
    folds=5,
    seed=0,
    split_seed=0,
    data_fp="data-fp-1",
    bayes=0.9,
    missing_folds=None,
    with_ground_truth=True,
    epochs=8,
    trials=6,
    repeats=1,
    groups=None,
):
    """Write a complete run directory; ``models`` maps label -> (quality, recipe, mask_source).

    Quality q gives logits q * onehot(label) + N(0, 1); recipe "dummy" predicts the training priors.
    """
    rng = np.random.default_rng(seed)
    ids = [f"case_{i:03d}" for i in range(n)]
    y = rng.choice(3, size=n, p=[0.5, 0.3, 0.2])
    outer = []
    for r in range(repeats):
        skf = StratifiedKFold(folds, shuffle=True, random_state=split_seed + 100 * r)
        outer += [
            {"repeat": r, "fold": k, "train": [ids[i] for i in tr], "test": [ids[i] for i in te], "inner": []}
            for k, (tr, te) in enumerate(skf.split(np.zeros(n), y))
        ]
    split_fp = f"split-{split_seed}"
    root.mkdir(parents=True)
    (root / "splits.json").write_text(json.dumps({"fingerprint": split_fp, "seed": split_seed, "outer": outer}))
    (root / "cohort").mkdir()
    pd.DataFrame({"case_id": ids, "label": y, "group": groups}).to_csv(root / "cohort" / "cases.csv", index=False)
    if with_ground_truth:
        gt = {"case_id": ids, "label": y, "label_true": y, "tumor_location": rng.choice(["head", "body", "tail"], n)}
        for v in VESSELS:
            gt[f"angle_{v}"] = np.clip(rng.normal(60 + 70 * y, 40), 0, 360)
        pd.DataFrame(gt).to_csv(root / "cohort" / "ground_truth.csv", index=False)
    manifest = {
        "benchmark": root.name,
        "created": "2026-01-01T00:00:00+00:00",
        "finished": "2026-01-01T01:00:00+00:00",
        "data_fingerprint": data_fp,
        "split_fingerprint": split_fp,
        "profile": {"name": "cpu"},
        "config": {"protocol": {"outer_folds": folds, "seed": split_seed}},
        "seeds": {"base": split_seed},
        "versions": {"python": "3.x", "resectbench": "0.1"},
        "git_sha": "abc123",
        "cohort": {
            "n_cases": n,
            "bayes_optimal_accuracy": bayes,
            "class_counts": {c: int((y == i).sum()) for i, c in enumerate(CLASSES)},
        },
    }
    (root / "manifest.json").write_text(json.dumps(manifest))
    for label, (quality, recipe, mask_source) in models.items():
        mdir = root / "models" / label
        mdir.mkdir(parents=True)
        (mdir / "model.json").write_text(
            json.dumps(
                {
                    "label": label,
                    "recipe": recipe,
                    "tags": ["chance"] if recipe == "dummy" else ["test"],
                    "mask_source": mask_source,
                    "n_parameters": 3 if recipe == "dummy" else 1000,
                }
            )
        )
        for o in outer:
            if missing_folds and label in missing_folds and o["fold"] in missing_folds[label] and o["repeat"] == 0:
                continue
            test = np.array([ids.index(c) for c in o["test"]])
            train = np.array([ids.index(c) for c in o["train"]])
            yt = y[test]
            if recipe == "dummy":
                prior = np.bincount(y[train], minlength=3) / len(train)
                proba = np.tile(prior, (len(test), 1))
            else:
                logits = quality * np.eye(3)[yt] + rng.normal(0, 1, (len(test), 3))
                proba = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
            udir = mdir / f"fold_{o['repeat']}_{o['fold']}"
            udir.mkdir()
            pred = pd.DataFrame({"case_id": o["test"], "repeat": o["repeat"], "fold": o["fold"], "label": yt})
            for j, col in enumerate(PROB_COLUMNS):
                pred[col] = proba[:, j]
            pred["pred"] = proba.argmax(1)
            pred.to_csv(udir / "predictions.csv", index=False)
            metrics = _metrics(yt, proba)
            if mask_source != "none":
                metrics.update({f"dice_{s}": float(rng.uniform(0.4, 0.7)) for s in ("sma", "tumor", "smv", "pancreas")})
            metrics.update(n_parameters=1000, train_seconds=float(rng.uniform(5, 10)), infer_seconds_per_case=0.01)
            (udir / "metrics.json").write_text(json.dumps(metrics))
            (udir / "best_params.json").write_text(json.dumps({"lr": 1e-3}))
            ep = np.arange(epochs)
            pd.DataFrame(
                {
                    "epoch": ep,
                    "loss": 1.5 * np.exp(-ep / 4) + 0.1,
                    "seg_loss": np.exp(-ep / 3),
                    "cls_loss": 1.1 * np.exp(-ep / 5),
                    "w_seg": np.where(ep < 3, 3.0, 1.5),
                    "w_cls": np.where(ep < 3, 1 / 3, 1 / 1.5),
                    "tumor_dice": 1 - np.exp(-ep / 3),
                    "val_macro_f1": 0.4 + 0.3 * (1 - np.exp(-ep / 3)),
                }
            ).to_csv(udir / "history.csv", index=False)
            pd.DataFrame(
                {
                    "number": range(trials),
                    "value": rng.uniform(0.4, 0.8, trials),
                    "state": "COMPLETE",
                    "duration": 3.0,
                    "params_lr": rng.choice([1e-3, 5e-4, 1e-4], trials),
                    "params_feature_size": rng.choice([12, 24], trials),
                    "params_fusion": rng.choice(["concat", "late"], trials),
                }
            ).to_csv(udir / "trials.csv", index=False)
            (udir / "timings.json").write_text(json.dumps({"train_seconds": 7.0}))
            (udir / "DONE").write_text("")
    return root


STANDARD = {
    "strong": (2.5, "swinunetr-fusion", "none"),
    "weak": (0.6, "clinical-sklearn", "none"),
    "dummy": (0.0, "dummy", "none"),
}


def test_rows_hold_fold_statistics_and_pooled_intervals(tmp_path):
    run = fabricate_run(tmp_path / "run", STANDARD)
    board = build_leaderboard(load_runs([run]), n_boot=300)
    labels = [r.label for r in board.rows]
    assert labels[:3] == ["strong", "weak", "dummy"]
    assert board.rows[-1].kind == "ceiling" and board.rows[-1].mean["accuracy"] == 0.9
    strong = board.row("strong")
    folds = pd.DataFrame(
        [json.loads(p.read_text()) for p in sorted((run / "models/strong").glob("fold_*/metrics.json"))]
    )
    assert strong.mean["auc_ovr_macro"] == pytest.approx(folds["auc_ovr_macro"].mean())
    assert strong.sd["macro_f1"] == pytest.approx(folds["macro_f1"].std(ddof=1))
    assert strong.n_folds == strong.n_expected == 5
    oof = pd.concat([pd.read_csv(p) for p in (run / "models/strong").glob("fold_*/predictions.csv")])
    pooled = strong.pooled["accuracy"]
    assert pooled.estimate == pytest.approx((oof["pred"] == oof["label"]).mean())
    assert pooled.low < pooled.estimate < pooled.high
    assert strong.train_seconds > 0 and strong.n_parameters == 1000


def test_chance_collapse_and_missing_chance_are_flagged(tmp_path):
    board = build_leaderboard(load_runs([fabricate_run(tmp_path / "a", STANDARD)]), n_boot=100)
    dummy = board.row("dummy")
    assert dummy.kind == "chance" and dummy.collapsed
    assert any("collapsed" in f for f in dummy.flags) and any("chance" in f for f in dummy.flags)
    assert not board.row("strong").collapsed
    assert not any("no chance row" in n for n in board.notes)
    without = build_leaderboard(load_runs([fabricate_run(tmp_path / "b", {"strong": STANDARD["strong"]})]), n_boot=50)
    assert any("no chance row" in n for n in without.notes)


def test_oracle_rows_are_marked_and_not_the_default_reference(tmp_path):
    models = {**STANDARD, "oracle": (4.0, "geometric-rules", "oracle")}
    board = build_leaderboard(load_runs([fabricate_run(tmp_path / "run", models)]), n_boot=100)
    oracle = board.row("oracle")
    assert oracle.kind == "oracle" and oracle.rank == 1 and "dice_tumor" in oracle.mean
    assert board.reference == "strong"  # the best fair entry, not the upper bound
    assert "dice_tumor" in board.metrics


def test_comparisons_against_the_reference(tmp_path):
    run = load_runs([fabricate_run(tmp_path / "run", STANDARD)])
    board = build_leaderboard(run, n_boot=200, bayesian=True, rope=0.01)
    assert board.reference == "strong"
    weak = board.comparison("weak")
    assert weak.mean_difference < 0 and weak.auc_difference < 0
    assert weak.p_ttest < 0.05 and weak.p_auc < 0.01
    assert weak.p_ttest_holm >= weak.p_ttest and weak.p_auc_holm >= weak.p_auc
    assert weak.bayes.p_left > 0.9
    assert board.settings["test_train_ratio"] == pytest.approx(12 / 48)
    chosen = build_leaderboard(run, reference="weak", auc_test="bootstrap", n_boot=200)
    strong = chosen.comparison("strong")
    assert chosen.reference == "weak" and strong.auc_test == "bootstrap"
    assert strong.auc_difference > 0 and strong.p_auc < 0.05
    with pytest.raises(LeaderboardError, match="reference model 'nope'"):
        build_leaderboard(run, reference="nope")


def test_ranking_by_a_lower_is_better_metric(tmp_path):
    board = build_leaderboard(
        load_runs([fabricate_run(tmp_path / "run", STANDARD)]), rank_by="brier", n_boot=50, bayesian=True
    )
    brier = [r.mean["brier"] for r in board.rows if r.kind != "ceiling"]
    assert brier == sorted(brier)
    weak = board.comparison("weak")  # higher Brier than the reference: worse
    assert weak.mean_difference > 0 and weak.bayes.p_left > weak.bayes.p_right
    with pytest.raises(LeaderboardError, match="cannot rank by"):
        build_leaderboard(load_runs([tmp_path / "run"]), rank_by="speed")


def test_incomplete_models_are_flagged(tmp_path):
    run = fabricate_run(tmp_path / "run", STANDARD, missing_folds={"weak": {3, 4}})
    board = build_leaderboard(load_runs([run]), n_boot=50)
    assert board.row("weak").n_folds == 3
    assert "incomplete: 3/5 folds" in board.row("weak").flags
    assert board.comparison("weak").n_folds == 3


def test_runs_with_the_same_splits_merge(tmp_path):
    a = fabricate_run(tmp_path / "a", {"strong": STANDARD["strong"], "dummy": STANDARD["dummy"]})
    b = fabricate_run(tmp_path / "b", {"weak": STANDARD["weak"], "dummy": STANDARD["dummy"]}, seed=0)
    merged = load_runs([a, b])
    assert sorted(merged.models) == ["dummy", "dummy@b", "strong", "weak"]
    board = build_leaderboard(merged, n_boot=50)
    assert {r.label for r in board.rows} >= {"strong", "weak"}


def test_runs_with_different_splits_or_data_refuse_to_merge(tmp_path):
    a = fabricate_run(tmp_path / "a", {"strong": STANDARD["strong"]})
    b = fabricate_run(tmp_path / "b", {"weak": STANDARD["weak"]}, split_seed=1)
    with pytest.raises(LeaderboardError, match="split fingerprints differ") as err:
        load_runs([a, b])
    assert "split-0" in str(err.value) and "split-1" in str(err.value) and str(b) in str(err.value)
    c = fabricate_run(tmp_path / "c", {"weak": STANDARD["weak"]}, data_fp="data-fp-2")
    with pytest.raises(LeaderboardError, match="data fingerprints differ"):
        load_runs([a, c])


def test_unreadable_inputs_give_clear_errors(tmp_path):
    with pytest.raises(LeaderboardError, match="does not exist"):
        load_runs([tmp_path / "nope"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(LeaderboardError, match="no manifest.json"):
        load_runs([tmp_path / "empty"])
    run = fabricate_run(tmp_path / "run", {"strong": STANDARD["strong"]})
    bad = run / "models/strong/fold_0_0/predictions.csv"
    pd.read_csv(bad).drop(columns=["prob_borderline"]).to_csv(bad, index=False)
    with pytest.raises(LeaderboardError, match="prob_borderline"):
        load_runs([run])


def test_unfinished_units_are_ignored(tmp_path):
    run = fabricate_run(tmp_path / "run", STANDARD)
    (run / "models/weak/fold_0_1/DONE").unlink()
    board = build_leaderboard(load_runs([run]), n_boot=50)
    assert board.row("weak").n_folds == 4


def test_repeated_cv_pools_every_repeat_and_pairs_folds(tmp_path):
    run = load_runs([fabricate_run(tmp_path / "run", STANDARD, n=40, folds=4, repeats=2)])
    assert run.n_expected_folds == 8
    board = build_leaderboard(run, n_boot=100)
    strong = board.row("strong")
    assert strong.n_folds == 8
    oof = run.models["strong"].oof()
    assert len(oof) == 80 and oof.groupby("case_id").size().eq(2).all()
    assert strong.pooled["accuracy"].estimate == pytest.approx((oof["pred"] == oof["label"]).mean())
    assert board.comparison("weak").n_folds == 8
    assert board.settings["test_train_ratio"] == pytest.approx(10 / 30)


def test_bootstrap_resamples_patients_not_rows(tmp_path):
    groups = [f"patient_{i // 2}" for i in range(40)]  # two scans per patient
    run = load_runs([fabricate_run(tmp_path / "run", STANDARD, n=40, folds=4, groups=groups)])
    units = run.patient_of(run.models["strong"].oof()["case_id"])
    assert set(units) == set(groups)
    ungrouped = load_runs([fabricate_run(tmp_path / "plain", STANDARD, n=40, folds=4)])
    assert set(ungrouped.patient_of(["case_000", "case_001"])) == {"case_000", "case_001"}


def test_dice_summary_and_segmentation_table(tmp_path):
    from resectbench.leaderboard.formats.tables import details_table, segmentation_table

    run = fabricate_run(tmp_path / "run", {**STANDARD, "seg": (2.0, "swinunetr-fusion", "predicted")})
    board = build_leaderboard(load_runs([run]), n_boot=50)
    folds = pd.DataFrame([json.loads(p.read_text()) for p in sorted((run / "models/seg").glob("fold_*/metrics.json"))])
    vessels = folds[["dice_sma", "dice_smv"]].mean(axis=1)
    seg = board.row("seg")
    assert seg.mean["dice_vessels"] == pytest.approx(vessels.mean())
    assert seg.sd["dice_vessels"] == pytest.approx(vessels.std(ddof=1))
    assert "Dice vessels" in details_table(board).headers and "Dice smv" not in details_table(board).headers
    table = segmentation_table(board)
    assert [r[0] for r in table.rows] == ["pancreas", "tumor", "smv", "sma"]  # canonical label order
    assert table.headers == ["structure", "seg"]
    assert (
        segmentation_table(build_leaderboard(load_runs([fabricate_run(tmp_path / "b", STANDARD)]), n_boot=20)) is None
    )
