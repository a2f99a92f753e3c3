"""Neural and classical models: the recipe interface (``base``), image backbones, clinical encoders,
recipes and the training engine."""
