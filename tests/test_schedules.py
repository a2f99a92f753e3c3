"""Loss schedules: registration, the paper's step thresholds, smooth/fixed/uncertainty/cls-only behaviour."""

import math

import pytest
import torch

from resectbench import registry

SCHEDULES = ["dice-step", "fixed", "dice-smooth", "uncertainty", "cls-only"]


def _create(name, **kwargs):
    return registry.loss_schedules.create(name, **kwargs)


def test_all_schedules_registered_with_search_space():
    assert set(SCHEDULES) <= set(registry.loss_schedules.list())
    for name in SCHEDULES:
        info = registry.loss_schedules.describe(name)
        assert info["description"] and info["doc"]
        assert registry.loss_schedules.get(name).search_space is not None


@pytest.mark.parametrize("name", SCHEDULES)
def test_combine_returns_total_and_both_weights(name):
    schedule = _create(name)
    seg, cls = torch.tensor(0.7), torch.tensor(1.3)
    total, weights = schedule.combine(seg, cls)
    assert set(weights) >= {"w_seg", "w_cls"}
    assert all(isinstance(v, float) for v in weights.values())
    if name != "uncertainty":
        expected = weights["w_cls"] * 1.3 + (weights["w_seg"] * 0.7 if schedule.uses_segmentation else 0.0)
        assert float(total) == pytest.approx(expected)
    # no segmentation loss in this batch: classification term only
    total, weights = schedule.combine(None, cls)
    if name != "uncertainty":
        assert float(total) == pytest.approx(weights["w_cls"] * 1.3)


@pytest.mark.parametrize(
    "tau,w_seg",
    [(0.0, 3.0), (0.0999, 3.0), (0.1, 1.5), (0.1001, 1.5), (0.4999, 1.5), (0.5, 1.0), (0.5001, 1.0), (1.0, 1.0)],
)
def test_dice_step_switches_exactly_at_thresholds(tau, w_seg):
    schedule = _create("dice-step")
    schedule.end_epoch({"tumor_dice": tau})
    weights = schedule.current_weights()
    assert weights["w_seg"] == w_seg
    assert weights["w_cls"] == pytest.approx(1.0 / w_seg)
    assert schedule.combine(torch.tensor(1.0), torch.tensor(1.0))[1] == weights


def test_dice_step_starts_at_three_and_follows_epochs():
    schedule = _create("dice-step")
    assert schedule.current_weights() == {"w_seg": 3.0, "w_cls": pytest.approx(1 / 3)}
    seen = []
    for dice in (0.05, 0.2, None, float("nan"), 0.6, 0.3):
        schedule.end_epoch({"tumor_dice": dice, "epoch": len(seen) + 1})
        seen.append(schedule.current_weights()["w_seg"])
    # None / NaN (no masked batch that epoch) keep the previous Dice
    assert seen == [3.0, 1.5, 1.5, 1.5, 1.0, 1.5]


def test_dice_step_state_round_trips():
    a = _create("dice-step")
    a.end_epoch({"tumor_dice": 0.3})
    b = _create("dice-step")
    b.load_state_dict(a.state_dict())
    assert b.current_weights()["w_seg"] == 1.5


def test_dice_step_rejects_out_of_range_dice_and_bad_config():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        _create("dice-step").end_epoch({"tumor_dice": 1.5})
    with pytest.raises(ValueError, match="one more weight"):
        _create("dice-step", thresholds=(0.1,), w_seg_steps=(3.0, 1.5, 1.0))
    with pytest.raises(ValueError, match="increasing"):
        _create("dice-step", thresholds=(0.5, 0.1))


def test_dice_smooth_is_continuous_monotone_and_meets_step_end_points():
    schedule = _create("dice-smooth")
    values = [schedule.w_seg_at(t / 100) for t in range(101)]
    assert values[0] == pytest.approx(3.0) and values[50] == pytest.approx(1.0) and values[100] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(values, values[1:]))
    # no jumps: a 0.01 change in Dice moves w_seg by < 0.1 (the step schedule jumps by 1.5 at 0.1)
    assert max(abs(a - b) for a, b in zip(values, values[1:])) < 0.1
    schedule.end_epoch({"tumor_dice": 0.25})
    w = schedule.current_weights()
    assert w["w_seg"] == pytest.approx(math.sqrt(3.0)) and w["w_cls"] == pytest.approx(1 / math.sqrt(3.0))


def test_fixed_uses_any_weights_and_zero_seg_disables_segmentation():
    schedule = _create("fixed", w_seg=2.0, w_cls=0.5)
    for dice in (0.0, 0.9):
        schedule.end_epoch({"tumor_dice": dice})
        assert schedule.current_weights() == {"w_seg": 2.0, "w_cls": 0.5}
    assert schedule.uses_segmentation
    assert not _create("fixed", w_seg=0.0).uses_segmentation
    with pytest.raises(ValueError):
        _create("fixed", w_cls=0.0)


def test_cls_only_has_no_segmentation():
    schedule = _create("cls-only")
    assert schedule.uses_segmentation is False
    cls = torch.tensor(0.8)
    total, weights = schedule.combine(torch.tensor(5.0), cls)
    assert float(total) == pytest.approx(0.8) and weights == {"w_seg": 0.0, "w_cls": 1.0}


def test_uncertainty_weights_are_learnable_and_reported():
    schedule = _create("uncertainty")
    params = dict(schedule.named_parameters())
    assert set(params) == {"log_var_seg", "log_var_cls"} and all(p.requires_grad for p in params.values())
    total, weights = schedule.combine(torch.tensor(2.0), torch.tensor(0.5))
    assert weights == {"w_seg": pytest.approx(1.0), "w_cls": pytest.approx(1.0)}
    assert float(total.detach()) == pytest.approx(2.5)
    # a large segmentation loss drives its log-variance up, i.e. its weight down (optimum exp(-s) = 1 / (2 L))
    opt = torch.optim.SGD(schedule.parameters(), lr=0.1)
    for _ in range(300):
        opt.zero_grad()
        total, weights = schedule.combine(torch.tensor(2.0), torch.tensor(0.5))
        total.backward()
        opt.step()
    assert weights["w_seg"] == pytest.approx(1 / (2 * 2.0), rel=0.05)
    assert weights["w_cls"] == pytest.approx(1 / (2 * 0.5), rel=0.05)
    assert weights["w_seg"] < weights["w_cls"]
    # learned state survives a state_dict round trip
    other = _create("uncertainty")
    other.load_state_dict(schedule.state_dict())
    assert other.current_weights() == pytest.approx(schedule.current_weights())


def test_uncertainty_without_seg_loss_only_touches_cls_variance():
    schedule = _create("uncertainty")
    total, _ = schedule.combine(None, torch.tensor(1.0))
    total.backward()
    assert schedule.log_var_seg.grad is None
    assert schedule.log_var_cls.grad is not None
