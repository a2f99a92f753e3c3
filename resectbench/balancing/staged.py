"""``staged``: the image branch first, alone; then the clinical branch and head on the trained image branch."""

from __future__ import annotations

from ..registry import component
from ..search_space import Categorical
from .base import BalancingStrategy, require_two_modalities


@component(
    "staged",
    tags=("staged",),
    description="Image branch first (clinical withheld), then clinical encoder + head with the image branch frozen",
    search_space={"image_fraction": Categorical([1.0, 0.75]), "head_steps": Categorical([300, 150])},
)
class StagedTraining(BalancingStrategy):
    """Staged (two-stage) training of a fusion network: uni-modal pre-training of the slow branch, then
    fusion (as in Wang, Tran, Feiszli, CVPR 2020, sec. 3 "pre-training"; Du et al., ICML 2023, uni-modal
    teachers; the usual recipe for CT + tabular fusion on small cohorts).

    Stage 1, epochs ``1 .. image_fraction * max_epochs``: the clinical embedding is withheld (zeros, in
    training and validation; the clinical encoder's weights untouched), so the backbone and the fused head learn the classes from the image alone,
    together with the auxiliary segmentation; the checkpoint is chosen as usual (validation macro-F1 and
    tumour Dice). Stage 2, the remaining epochs: the clinical branch joins; the image backbone is frozen
    (``then="frozen"``) or trained at ``image_lr_scale`` times its rate (``then="slow"``). After the loop,
    with ``head_steps`` > 0, a fresh clinical encoder + fusion head are fitted on the frozen backbone's
    embeddings of the training cases, full batch (models/engine/head_refit.py: seconds, where a stage-2
    epoch costs a forward pass of every volume), kept only where the inner validation says it is better.

    ``head_objective``: what the frozen-embedding fit trains the heads on. ``unimodal`` (a fusion with a
    head per modality, e.g. ``late``): each modality's head on its own logits, each stopped at its own best
    inner-validation check, the fused output their logit average - a uni-modal ensemble inside the network
    (Du et al., ICML 2023), the clinical head stopped long before it memorises the training cases;
    ``fused``: the fused logits; ``auto`` (default): ``unimodal`` where the fusion allows it.

    ``image_fraction=1.0`` (the default) gives the whole loop to stage 1 and stage 2 entirely to the
    frozen-embedding fit, the cheapest form and the one the cpu profile's main job uses."""

    name = "staged"

    def __init__(
        self,
        image_fraction: float = 1.0,
        then: str = "frozen",
        image_lr_scale: float = 0.1,
        head_steps: int = 300,
        head_objective: str = "auto",
    ):
        if not 0.0 < image_fraction <= 1.0:
            raise ValueError(f"staged: image_fraction must be in (0, 1], got {image_fraction}")
        if then not in ("frozen", "slow"):
            raise ValueError(f"staged: then must be 'frozen' or 'slow', got {then!r}")
        if not 0.0 <= image_lr_scale <= 1.0:
            raise ValueError(f"staged: image_lr_scale must be in [0, 1], got {image_lr_scale}")
        if head_steps < 0 or (image_fraction == 1.0 and head_steps == 0):
            raise ValueError(
                "staged: head_steps must be >= 0, and > 0 when image_fraction is 1.0 (the clinical branch "
                f"would never be trained); got head_steps={head_steps}, image_fraction={image_fraction}"
            )
        self.image_fraction, self.then, self.image_lr_scale = float(image_fraction), then, float(image_lr_scale)
        if head_objective not in ("auto", "fused", "unimodal"):
            raise ValueError(f"staged: head_objective must be 'auto', 'fused' or 'unimodal', got {head_objective!r}")
        self.head_steps, self.head_objective = int(head_steps), head_objective
        self._withheld = None  # the hook that zeroes the clinical embedding during stage 1
        self._frozen: list = []  # parameters this strategy froze (and only those are unfrozen again)
        self.stage = 1

    def setup(self, net, n_classes):
        require_two_modalities(net, self.name)
        return []

    def image_epochs(self, max_epochs: int) -> int:
        return max(1, round(self.image_fraction * max_epochs))

    def start_epoch(self, epoch, max_epochs, net, optimizer):
        stage = 1 if epoch <= self.image_epochs(max_epochs) else 2
        if stage == 1 and self._withheld is None:
            self._withheld = net.clinical_encoder.register_forward_hook(lambda _m, _i, output: output * 0)
            self._freeze(net.clinical_encoder)  # untouched until it is used (no weight decay on unused weights)
        if stage == 2 and self.stage == 1:
            self._release(net)
            if self.then == "frozen":
                self._freeze(net.backbone)  # no gradient: AdamW leaves the weights (and their decay) alone
            else:
                # the cosine schedule scales the group's current rate, so the factor holds from here on
                for group in optimizer.param_groups:
                    if group.get("name") == "image":
                        group["lr"] *= self.image_lr_scale
        self.stage = stage
        return {"stage": float(stage)}

    def _freeze(self, module):
        for p in module.parameters():
            if p.requires_grad:
                p.requires_grad_(False)
                self._frozen.append(p)

    def _release(self, net):
        if self._withheld is not None:
            self._withheld.remove()
            self._withheld = None
            clinical = {id(p) for p in net.clinical_encoder.parameters()}
            for p in [p for p in self._frozen if id(p) in clinical]:
                p.requires_grad_(True)
            self._frozen = [p for p in self._frozen if id(p) not in clinical]

    def finish(self, net):
        self._release(net)
        for p in self._frozen:
            p.requires_grad_(True)
        self._frozen, self.stage = [], 1

    def describe(self):
        return {
            "name": self.name,
            "image_fraction": self.image_fraction,
            "then": self.then,
            "image_lr_scale": self.image_lr_scale,
            "head_steps": self.head_steps,
            "head_objective": self.head_objective,
        }
