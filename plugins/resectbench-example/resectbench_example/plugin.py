"""Hooks of the example plugin. resectbench finds this module through the entry point in pyproject.toml."""

from __future__ import annotations

import typer

from resectbench import hookimpl
from resectbench.search_space import Categorical, Float

from .components import BilinearFusion, TinyCNN3D


@hookimpl
def register_backbones(registry):
    registry.register(
        "example-tinycnn",
        tags=("cnn", "3d", "example"),
        search_space={"width": Categorical([4, 8, 16]), "depth": Categorical([2, 3])},
    )(TinyCNN3D)


@hookimpl
def register_fusions(registry):
    registry.register(
        "example-bilinear",
        tags=("example",),
        search_space={"rank_dim": Categorical([8, 16]), "dropout": Float(0.0, 0.3)},
    )(BilinearFusion)


@hookimpl
def register_models(registry):
    # A runnable recipe composed from built-in and plugin components by name, exactly like the built-ins.
    from resectbench.models.recipes.compose import NeuralRecipe

    def example_fusion(lr: float = 1e-3, width: int = 8, rank_dim: int = 16, max_epochs: int | None = None):
        """Tiny 3D CNN + MLP clinical encoder + bilinear fusion, classification only (no segmentation)."""
        return NeuralRecipe(
            backbone="example-tinycnn",
            backbone_kwargs={"width": width},
            clinical_encoder="mlp",
            fusion="example-bilinear",
            fusion_kwargs={"rank_dim": rank_dim},
            loss_schedule="cls-only",
            lr=lr,
            max_epochs=max_epochs,
        )

    registry.register(
        "example-fusion",
        tags=("example", "fusion"),
        search_space={"lr": Categorical([1e-3, 5e-4]), "width": Categorical([4, 8]), "rank_dim": Categorical([8, 16])},
    )(example_fusion)


@hookimpl
def register_commands(app: typer.Typer):
    @app.command("example-shapes")
    def example_shapes(
        size: int = typer.Option(32, help="Edge length of the test volume (voxels)."),
        batch: int = typer.Option(2, help="Batch size."),
    ):
        """[example plugin] Build the example backbone and fusion and print their output shapes.

        Example: resectbench example-shapes --size 32
        """
        import torch

        backbone = TinyCNN3D(roi=(size, size, size))
        out = backbone(torch.zeros(batch, 1, size, size, size))
        logits = BilinearFusion(backbone.embed_dim, 8)(out.embedding, torch.zeros(batch, 8))
        typer.echo(f"embedding {tuple(out.embedding.shape)} -> logits {tuple(logits.shape)}")
