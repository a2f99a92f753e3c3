"""Registered neural recipes (registry ``models``), each a :class:`~.compose.NeuralRecipe` with its defaults.

Every recipe takes ``backbone``, ``clinical_encoder``, ``fusion`` and ``loss_schedule`` so the
CLI's ``--backbone/--fusion/--clinical-encoder/--loss-schedule`` flags can swap any part; every
other keyword goes to :class:`~.compose.NeuralRecipe`.
"""
