"""Segmentation loss, Dice helper and class-weighted classification loss on tiny tensors."""

import numpy as np
import pytest
import torch

from resectbench.data.labels import INDEX
from resectbench.errors import DataError
from resectbench.losses import SegmentationLoss, class_dice, classification_loss, inverse_frequency_weights, tumor_dice

TUMOR = INDEX["tumor"]
N_SEG = 16


def _target(seed=0, shape=(2, 8, 8, 8)):
    g = torch.Generator().manual_seed(seed)
    target = torch.zeros(shape, dtype=torch.uint8)
    target[:, 2:6, 2:6, 2:6] = INDEX["pancreas"]
    target[:, 3:5, 3:5, 3:5] = TUMOR
    target[:, 0, 0, :] = INDEX["sma"]
    noise = torch.rand(shape, generator=g) < 0.05
    target[noise] = INDEX["smv"]
    return target


def _logits_for(target, confidence=10.0):
    """Logits whose argmax is ``target`` (perfect prediction)."""
    onehot = torch.nn.functional.one_hot(target.long(), N_SEG).movedim(-1, 1).float()
    return onehot * confidence


def test_perfect_prediction_has_lower_loss_than_wrong_one():
    target = _target()
    loss = SegmentationLoss()
    perfect = loss(_logits_for(target), target)
    wrong = loss(_logits_for((target.long() + 1) % N_SEG), target)
    g = torch.Generator().manual_seed(1)
    random = loss(torch.randn(2, N_SEG, 8, 8, 8, generator=g), target)
    assert perfect < random < wrong
    assert perfect < 0.05


def test_each_term_rewards_the_right_answer_and_weights_combine():
    target = _target()
    loss = SegmentationLoss(ce=0.3, dice=0.5, focal=0.2)
    perfect, wrong = _logits_for(target), _logits_for((target.long() + 3) % N_SEG)
    good, bad = loss.terms(perfect, target), loss.terms(wrong, target)
    assert set(good) == {"ce", "dice", "focal"}
    for term in good:
        assert good[term] < bad[term], term
    expected = 0.3 * bad["ce"] + 0.5 * bad["dice"] + 0.2 * bad["focal"]
    assert torch.allclose(loss(wrong, target), expected)
    # a zero weight drops the term
    assert set(SegmentationLoss(ce=1.0, dice=0.0, focal=0.0).terms(wrong, target)) == {"ce"}


def test_segmentation_loss_accepts_channel_target_and_gives_gradients():
    target = _target()
    logits = torch.randn(2, N_SEG, 8, 8, 8, requires_grad=True)
    loss = SegmentationLoss()
    value = loss(logits, target.unsqueeze(1))
    assert torch.allclose(value, loss(logits, target))
    value.backward()
    assert logits.grad.abs().sum() > 0


def test_segmentation_loss_rejects_bad_targets():
    loss = SegmentationLoss()
    logits = torch.randn(2, 4, 8, 8, 8)
    with pytest.raises(ValueError, match="4 channels"):
        loss(logits, _target())  # labels up to 7 (sma) with only 4 channels
    with pytest.raises(ValueError, match="does not match"):
        loss(torch.randn(2, N_SEG, 8, 8, 4), _target())
    with pytest.raises(ValueError, match="must be >= 0"):
        SegmentationLoss(focal=-0.1)


def test_tumor_dice_per_sample_and_mean():
    target = _target()
    perfect = _logits_for(target)
    assert torch.allclose(tumor_dice(perfect, target), torch.tensor(1.0))
    # sample 1 predicts no tumor at all
    pred = target.clone()
    pred[1][pred[1] == TUMOR] = INDEX["pancreas"]
    per = tumor_dice(_logits_for(pred), target, reduction="none")
    assert per.tolist() == pytest.approx([1.0, 0.0])
    assert float(tumor_dice(_logits_for(pred), target)) == pytest.approx(0.5)
    # half of the tumor predicted in sample 0: Dice = 2*4 / (4 + 8) on the 2x2x2 tumor
    half = target.clone()
    half[0, 3, 3:5, 3:5] = INDEX["pancreas"]
    assert float(tumor_dice(_logits_for(half), target, reduction="none")[0]) == pytest.approx(2 * 4 / 12)


def test_dice_ignores_samples_without_the_structure():
    target = _target()
    target[1][target[1] == TUMOR] = INDEX["pancreas"]  # no tumor in sample 1 (e.g. no mask)
    per = tumor_dice(_logits_for(target), target, reduction="none")
    assert per[0] == 1.0 and torch.isnan(per[1])
    assert float(tumor_dice(_logits_for(target), target)) == 1.0
    empty = torch.zeros_like(target)
    assert torch.isnan(tumor_dice(_logits_for(target), empty))
    assert float(class_dice(_logits_for(target), target, INDEX["pancreas"])) == 1.0


def test_classification_loss_default_weights_are_the_papers():
    loss = classification_loss()
    assert loss.weight.tolist() == [1.0, 2.0, 2.5]
    logits = torch.zeros(3, 3)
    # with uniform logits each sample's CE is log 3; weighting changes nothing in the weighted mean
    assert float(loss(logits, torch.tensor([0, 1, 2]))) == pytest.approx(np.log(3))
    # the weighted mean counts a class-2 error 2.5x a class-0 error
    logits = torch.tensor([[0.0, 0.0, 5.0], [5.0, 0.0, 0.0]])  # sample 0 wrong (true 0), sample 1 wrong (true 2)
    per_sample = torch.nn.functional.cross_entropy(logits, torch.tensor([0, 2]), reduction="none")
    expected = (1.0 * per_sample[0] + 2.5 * per_sample[1]) / 3.5
    assert float(loss(logits, torch.tensor([0, 2]))) == pytest.approx(float(expected))


def test_inverse_frequency_weights_from_labels():
    labels = np.array([0] * 85 + [1] * 47 + [2] * 27)  # the paper's cohort
    weights = inverse_frequency_weights(labels)
    assert weights == pytest.approx([1.0, 85 / 47, 85 / 27])
    assert np.round(weights, 1).tolist() == [1.0, 1.8, 3.1]
    loss = classification_loss("inverse-frequency", labels=labels)
    assert loss.weight.numpy() == pytest.approx(weights)
    # another label set gives other weights: computed, not hard-coded
    assert classification_loss("inverse-frequency", labels=[0, 1, 1, 2, 2, 2, 2]).weight.tolist() == pytest.approx(
        [4.0, 2.0, 1.0]
    )


def test_inverse_frequency_errors_and_other_options():
    with pytest.raises(DataError, match=r"class\(es\) \[2\] have no training case"):
        inverse_frequency_weights([0, 0, 1])
    with pytest.raises(DataError, match="outside"):
        inverse_frequency_weights([0, 1, 3])
    with pytest.raises(ValueError, match="needs the training labels"):
        classification_loss("inverse-frequency")
    with pytest.raises(ValueError, match="positive"):
        classification_loss((1.0, -2.0, 1.0))
    assert classification_loss(None).weight is None
    assert classification_loss("none").weight is None
    assert classification_loss((1, 1, 1)).weight.tolist() == [1.0, 1.0, 1.0]


@pytest.mark.parametrize("batch_dice", [True, False])
def test_dice_term_averages_over_present_structures_only(batch_dice):
    target = _target()  # 4 foreground structures of 15 present
    loss = SegmentationLoss(ce=0.0, dice=1.0, focal=0.0, batch_dice=batch_dice)
    # a confident, correct prediction: absent structures would each add ~1 if they counted
    assert float(loss(_logits_for(target), target)) < 0.01
    # drop the tumor from the prediction: one of the 4 present structures fails -> about 1/4
    pred = target.clone()
    pred[pred == TUMOR] = INDEX["pancreas"]
    value = float(loss(_logits_for(pred), target))
    assert 0.2 < value < 0.3
    # a batch without any foreground: the Dice term is 0 but still part of the graph
    logits = torch.randn(2, N_SEG, 8, 8, 8, requires_grad=True)
    empty = loss(logits, torch.zeros(2, 8, 8, 8, dtype=torch.long))
    assert float(empty.detach()) == 0.0 and empty.requires_grad
