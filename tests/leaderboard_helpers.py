"""Fabricated run directories in docs/results-format.md for leaderboard and report tests (import, don't collect)."""

import json

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix, f1_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold

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
