"""Image backbones (registry ``backbones``): one file per backbone, each a factory marked with
``@component``. Every backbone maps ``(B, in_channels, *roi)`` to a
:class:`~resectbench.models.backbones.base.BackboneOutput` (embedding + optional segmentation logits)."""
