"""Registered neural recipes (registry ``models``): the presets of :mod:`.presets`, each a :class:`~.compose.NeuralRecipe`.

Every recipe takes ``backbone``, ``clinical_encoder``, ``fusion`` and ``loss_schedule`` so the
CLI's ``--backbone/--fusion/--clinical-encoder/--loss-schedule`` flags can swap any part; every
other keyword goes to :class:`~.compose.NeuralRecipe`.
"""
