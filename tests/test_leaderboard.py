"""Leaderboards built from run directories that the tests fabricate in docs/results-format.md."""

import json

import pandas as pd
import pytest
from leaderboard_helpers import STANDARD, fabricate_run

from resectbench.leaderboard import LeaderboardError, build_leaderboard, load_runs


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
