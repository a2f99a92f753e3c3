"""The evaluation protocol: nested cross-validation with Optuna tuning, the run store and workers.

Public API::

    from resectbench.protocol import ExperimentConfig, ModelSpec, ProtocolConfig, run_benchmark, run_worker
    result = run_benchmark(ExperimentConfig(models=[ModelSpec("dummy")], run_dir="runs/x"))
    result.summary          # mean +- SD per model

    from resectbench.protocol.splits import make_splits
    from resectbench.protocol.metrics import classification_metrics
"""

from .config import DataConfig, ExperimentConfig, ModelSpec, ProtocolConfig, compose_spec
from .errors import ProtocolError
from .events import Plan, RunListener, Unit
from .runner import RunResult, attach, execute, prepare, run_benchmark, run_worker
from .summary import fold_metrics, summary_table

__all__ = [
    "DataConfig",
    "ExperimentConfig",
    "ModelSpec",
    "ProtocolConfig",
    "compose_spec",
    "ProtocolError",
    "Plan",
    "RunListener",
    "Unit",
    "RunResult",
    "attach",
    "execute",
    "prepare",
    "run_benchmark",
    "run_worker",
    "fold_metrics",
    "summary_table",
]
