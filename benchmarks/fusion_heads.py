"""Which head fuses a trained image branch with the clinical variables best? Measured on frozen embeddings.

For each outer fold of a finished run (``--run-dir``) of a staged ``swinunetr-fusion`` row (``--label``), the
image backbone the engine kept (``work/<label>/fold_0_<k>/best_weights.pt``) embeds the fold's inner-training,
inner-validation and test cases exactly as the recipe does (the localiser's windows, from the run's cache);
then several heads are fitted on the inner-training embeddings with the library's own head fit
(``models/engine/head_refit.py``: 300 full-batch steps, checked on the inner validation every 10 steps) or
scikit-learn, and scored on the test cases:

- ``image head``: the image embedding alone (what ``swinunetr-image-only`` refits);
- ``concat, fused``: a fresh clinical MLP + ``concat`` head fitted on the fused logits;
- ``late, fused`` / ``late, unimodal``: a head per modality, fitted on the fused logits or each on its own
  modality and stopped at its own best check (``staged``'s ``head_objective``);
- ``logistic clinical``: scikit-learn logistic regression on the clinical variables (training + validation);
- ``image head x logistic clinical``: the geometric mean of the two (what ``expert-ensemble`` does).

    .venv/bin/python benchmarks/fusion_heads.py --run-dir runs/paper-fusion-balancing \\
        --label swinunetr-fusion+staged --profile cpu-cascade

Writes benchmarks/results/fusion_heads.json and .md (mean +- SD over the folds, per-fold values). ``--quick``
fits the same heads on generated embeddings (one fold) and writes results/fusion_heads.quick.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def embeddings(run_dir: Path, label: str, profile: str, fold: int, params: dict) -> dict:
    """Frozen image embeddings + preprocessed clinical rows of one fold's three parts."""
    import torch

    from resectbench import registry
    from resectbench.data import default_cohort
    from resectbench.models.base import FitContext
    from resectbench.models.engine import load_weights
    from resectbench.models.engine.head_refit import image_embeddings
    from resectbench.profiles import get_profile
    from resectbench.protocol.seeding import derive_seed

    torch.set_num_threads(1)
    cohort = default_cohort(profile="cpu", seed=0)
    split = json.loads((run_dir / "splits.json").read_text())["outer"][fold]
    inner = split["inner"][0]
    parts = {
        name: cohort.subset(list(ids))
        for name, ids in (("train", inner["train"]), ("valid", inner["valid"]), ("test", split["test"]))
    }
    ctx = FitContext(seed=derive_seed(0, "fit", 0, fold), profile=get_profile(profile), cache_dir=run_dir / "cache")
    recipe = registry.models.create("swinunetr-fusion", **params)
    resolved = recipe._resolved(ctx)
    train = parts["train"]
    recipe.model_input = recipe._model_input(resolved).fit(train, ctx)  # the localiser from the run's cache
    recipe.net = recipe.build(recipe.model_input.preprocessor.n_features, resolved, segment=True)
    recipe.net.load_state_dict(load_weights(run_dir / "work" / label / f"fold_0_{fold}" / "best_weights.pt"))
    out = {}
    for name, part in parts.items():
        arrays = recipe.model_input.inference(part, ctx, labels=True)
        out[name] = (
            image_embeddings(recipe.net, arrays, batch_size=2, device="cpu").numpy(),
            arrays.clinical,
            np.asarray(part.labels),
        )
    return out


def heads(d: dict, seed: int = 0) -> dict[str, np.ndarray]:
    """Test-case probabilities of every head variant."""
    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from torch import nn

    from resectbench import registry
    from resectbench.losses import classification_loss
    from resectbench.models.backbones.base import BackboneOutput
    from resectbench.models.engine import CaseArrays
    from resectbench.models.engine.head_refit import HeadRefit, refit_head
    from resectbench.models.network import MultitaskNet

    class Frozen(nn.Module):  # the backbone's output, precomputed: the "image" of a case is its embedding
        segments = False

        def __init__(self, dim):
            super().__init__()
            self.embed_dim = dim

        def forward(self, x):
            return BackboneOutput(embedding=x.float(), seg_logits=None)

    def arrays(part):
        emb, clinical, y = d[part]
        return CaseArrays(
            [str(i) for i in range(len(y))], clinical.astype(np.float32), y, images=list(emb.astype(np.float32))
        )

    def fit(fusion, clinical=True, objective="fused"):
        torch.manual_seed(seed)
        dim, n_features = d["train"][0].shape[1], d["train"][1].shape[1]
        encoder = registry.clinical_encoders.create(
            "mlp" if clinical else "none", in_features=n_features, **({"dropout": 0.3} if clinical else {})
        )
        head = registry.fusions.create(
            fusion, image_dim=dim, clinical_dim=int(encoder.out_dim), n_classes=3, dropout=0.5
        )
        net = MultitaskNet(Frozen(dim), encoder, head)
        loss = classification_loss(class_weights=(1.0, 2.0, 2.5), labels=d["train"][2])
        refit_head(
            net,
            arrays("train"),
            arrays("valid"),
            loss,
            HeadRefit(steps=300, objective=objective),
            batch_size=8,
            device="cpu",
            seed=seed,
            keep_joint=False,
        )
        test = arrays("test")
        with torch.no_grad():
            logits = net.eval()(torch.from_numpy(np.stack(test.images)), torch.from_numpy(test.clinical)).logits
        return torch.softmax(logits.double(), dim=1).numpy()

    clinical = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, class_weight="balanced"))
    clinical.fit(np.concatenate([d["train"][1], d["valid"][1]]), np.concatenate([d["train"][2], d["valid"][2]]))
    out = {
        "image head": fit("image-only", clinical=False),
        "concat, fused": fit("concat"),
        "late, fused": fit("late"),
        "late, unimodal": fit("late", objective="unimodal"),
        "logistic clinical": clinical.predict_proba(d["test"][1]),
    }
    product = np.sqrt(out["image head"] * out["logistic clinical"])
    out["image head x logistic clinical"] = product / product.sum(axis=1, keepdims=True)
    return out


def generated(seed: int = 0) -> dict:
    """Embeddings with a known signal (the image's stronger than the clinical rows'), for --quick."""
    rng = np.random.default_rng(seed)

    def part(n):
        y = np.arange(n) % 3
        return (
            (y[:, None] + rng.normal(0, 1.0, (n, 19))).astype(np.float32),
            (y[:, None] * 0.5 + rng.normal(0, 1.0, (n, 17))).astype(np.float32),
            y,
        )

    return {"train": part(30), "valid": part(12), "test": part(15)}


def main() -> None:
    from resectbench.protocol.metrics import classification_metrics

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run-dir")
    ap.add_argument("--quick", action="store_true", help="generated embeddings, one fold (smoke test)")
    ap.add_argument("--label", default="swinunetr-fusion+staged")
    ap.add_argument("--profile", default="cpu-cascade")
    ap.add_argument("--param", action="append", default=[], help="the row's recipe parameters KEY=VALUE (JSON value)")
    ap.add_argument("--folds", type=int, default=5)
    args = ap.parse_args()
    params = {k: json.loads(v) for k, v in (p.split("=", 1) for p in args.param)}
    if args.quick:
        d = generated()
        scores = {n: classification_metrics(d["test"][2], p)["macro_f1"] for n, p in heads(d).items()}
        (RESULTS / "fusion_heads.quick.json").write_text(json.dumps(scores, indent=1) + "\n")
        print(json.dumps(scores))
        return
    if not args.run_dir:
        ap.error("--run-dir is required (or --quick)")
    run_dir = Path(args.run_dir)
    per_fold: dict[str, list] = {}
    for fold in range(args.folds):
        d = embeddings(run_dir, args.label, args.profile, fold, params)
        for name, proba in heads(d).items():
            m = classification_metrics(d["test"][2], proba)
            per_fold.setdefault(name, []).append(
                {k: m[k] for k in ("macro_f1", "auc_ovr_macro", "f1_locally_advanced")}
            )
        print(f"fold {fold} done", flush=True)
    rows = ["| head | macro-F1 | AUC | F1 LA | macro-F1 per fold |", "|:--|--:|--:|--:|:--|"]
    for name, folds in per_fold.items():
        f1, auc, la = (np.array([f[k] for f in folds]) for k in ("macro_f1", "auc_ovr_macro", "f1_locally_advanced"))
        rows.append(
            f"| {name} | {f1.mean():.3f} ± {f1.std(ddof=1):.3f} | {auc.mean():.3f} ± {auc.std(ddof=1):.3f} | {la.mean():.2f} | {' / '.join(f'{x:.2f}' for x in f1)} |"
        )
    table = "\n".join(rows)
    print(table)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "fusion_heads.json").write_text(
        json.dumps(
            {
                "run_dir": str(run_dir),
                "label": args.label,
                "profile": args.profile,
                "params": params,
                "per_fold": per_fold,
            },
            indent=1,
        )
        + "\n"
    )
    (RESULTS / "fusion_heads.md").write_text(
        f"<!-- .venv/bin/python benchmarks/fusion_heads.py --run-dir {run_dir} --label {args.label} --profile {args.profile} -->\n"
        f"Heads on the frozen image embeddings of `{args.label}` ({run_dir}), test cases of {args.folds} outer folds:\n\n{table}\n"
    )


if __name__ == "__main__":
    main()
