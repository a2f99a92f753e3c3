"""The experiment configuration: models, protocol and data, from a TOML file and/or CLI flags.

Precedence: CLI flags > TOML experiment file > profile defaults. The resolved configuration is
written to ``RUN_DIR/config.toml`` and can be run again as it is (``resectbench run --config``).

TOML layout::

    name = "pdac-benchmark"        # benchmark name (Optuna study prefix); default: run dir name
    profile = "cpu"                # cpu | cpu-cascade | cpu-whole | paper
    device = "auto"
    run_dir = "runs/pdac"
    storage = "postgresql://user@host/db"   # optional; default SQLite file in the run dir
    models = ["dummy", "clinical-sklearn"]  # short form, or tables:

    [[models]]
    name = "swinunetr-fusion"      # registry name (`resectbench list models`)
    label = "swin-late"            # folder/table name (default: name)
    params = { fusion = "late" }   # fixed hyper-parameters, taken out of the search space

    [data]
    path = "data/my_cohort"        # MSD/nnU-Net folder or manifest CSV; none = embedded synthetic cohort
    skip_invalid = false           # exclude (and record) invalid cases instead of refusing the cohort
    allow_missing_variables = []   # data_dictionary.csv variables the clinical table may lack
    data_dictionary = ""           # CSV/TOML/JSON dictionary used instead of the dataset's data_dictionary.csv
    external = ["data/site_b"]     # external cohorts scored by every final model (implies final_model)

    [[data.externals]]             # an external cohort with options of its own (added to `external`)
    path = "data/site_c"
    data_dictionary = "site_c.toml"              # its dictionary (column names, units, codes) instead of its own
    allow_missing_variables = ["ca19_9_change"]  # development variables it lacks: imputed by each final model

    [protocol]
    outer_folds = 5                # default 5, or the number of imported folds
    folds = ""                     # import the outer folds: nnU-Net splits_final.json, or CSV case_id,fold
    folds_column = ""              # the fold column of `folds` (default "fold"), or alone: of the cohort's table
    repeats = 1
    inner = "holdout"              # holdout | kfold
    inner_folds = 3                # for inner = "kfold"
    valid_fraction = 0.2           # for inner = "holdout"
    group_by = ""                  # cohort.table column (site/patient) kept on one side of splits
    trials = 1                     # default: the profile's
    timeout = 0                    # seconds per (model, fold) study; 0 = none
    seed = 0
    selection_metric = "macro_f1"
    refit = false                  # default: the profile's
    pruning = true
    final_model = false            # also tune + fit each model on the whole cohort (models/<label>/final)
"""

from __future__ import annotations

import re
import sys
from dataclasses import MISSING, asdict, dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from ..profiles import Profile, get_profile
from ..vocabulary import COMPONENT_SLOTS
from .errors import ProtocolError
from .metrics import SELECTION_METRICS
from .splits import INNER_MODES

COMPOSE_KEYS = tuple(COMPONENT_SLOTS)
_LABEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
_NAME_RE = re.compile(r"[^A-Za-z0-9_.+-]+")


@dataclass
class ModelSpec:
    """One model of a benchmark: a registered recipe, its fixed parameters and its label."""

    name: str
    label: str = ""
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        self.label = self.label or self.name
        if not _LABEL_RE.match(self.label):
            raise ProtocolError(f"model label {self.label!r} must be a plain file name (letters, digits, _.+-)")


@dataclass
class ProtocolConfig:
    outer_folds: int | None = None  # None: 5, or the number of imported folds
    #: outer folds imported from a file instead of made here: nnU-Net's splits_final.json or a CSV keyed by
    #: case_id (docs/protocol.md "Predefined folds"); "": none
    folds: str = ""
    #: the column of fold numbers in ``folds`` (default "fold"), or with no ``folds`` in the cohort's own table
    folds_column: str = ""
    repeats: int = 1
    inner: str = "holdout"
    inner_folds: int = 3
    valid_fraction: float = 0.2
    group_by: str = ""
    trials: int | None = None  # None: the profile's
    timeout: float | None = None  # seconds per study; None: no limit
    seed: int = 0
    selection_metric: str = "macro_f1"
    refit: bool | None = None  # None: the profile's
    pruning: bool = True
    #: tune and fit every model once more on the whole development cohort and store it (models/<label>/final)
    final_model: bool = False

    def validate(self) -> None:
        if self.inner not in INNER_MODES:
            raise ProtocolError(f"protocol.inner must be one of {', '.join(INNER_MODES)}, got {self.inner!r}")
        if self.selection_metric not in SELECTION_METRICS:
            raise ProtocolError(
                f"protocol.selection_metric must be one of {', '.join(SELECTION_METRICS)}, "
                f"got {self.selection_metric!r}"
            )
        if self.trials is not None and self.trials < 1:
            raise ProtocolError(f"protocol.trials must be at least 1, got {self.trials}")
        if self.outer_folds is not None and self.outer_folds < 2:
            raise ProtocolError(f"protocol.outer_folds must be at least 2, got {self.outer_folds}")
        if (self.folds or self.folds_column) and self.repeats != 1:
            raise ProtocolError(
                f"protocol.repeats is {self.repeats}, but predefined folds (protocol.folds / folds_column) give one "
                "partition of the cohort, so there is nothing to repeat; use repeats = 1"
            )


@dataclass
class ExternalSpec:
    """An external cohort with options of its own (``[[data.externals]]``; docs/protocol.md)."""

    path: str
    #: its data dictionary (CSV/TOML/JSON: column names, units, value maps, missing tokens) used instead of the
    #: cohort's own data_dictionary.csv; None: that one
    data_dictionary: str | None = None
    #: development variables its clinical table may lack: each final model's imputer (fitted on development cases)
    #: fills them
    allow_missing_variables: list[str] = field(default_factory=list)


def external_name(path: str) -> str:
    """An external cohort's name (its results folder ``models/<label>/external/<name>``): the cohort folder's (or
    manifest file's) name, made a safe file name."""
    p = Path(path)
    return _NAME_RE.sub("-", p.stem if p.is_file() else p.name).strip("-") or "external"


@dataclass
class DataConfig:
    path: str | None = None  # None: the embedded synthetic cohort of the profile
    skip_invalid: bool = False
    #: data-dictionary variables the clinical table may lack (recorded in the manifest)
    allow_missing_variables: list[str] = field(default_factory=list)
    #: data dictionary (value maps, units, missing tokens) used instead of the dataset's own; None: its own
    data_dictionary: str | None = None
    #: external cohorts (folders or manifest CSVs) scored by every final model; never fitted on
    external: list[str] = field(default_factory=list)
    #: external cohorts with options of their own; :meth:`ExperimentConfig.resolved` adds their paths to ``external``
    externals: list[ExternalSpec] = field(default_factory=list)


@dataclass
class ExperimentConfig:
    models: list[ModelSpec] = field(default_factory=list)
    protocol: ProtocolConfig = field(default_factory=ProtocolConfig)
    data: DataConfig = field(default_factory=DataConfig)
    profile: str = "cpu"
    device: str = "auto"
    run_dir: str | None = None
    storage: str | None = None  # Optuna RDB URL, journal file path, or None (SQLite in the run dir)
    name: str = ""  # benchmark name; default: the run dir's folder name
    #: the Profile object of ``profile``, filled by :meth:`resolved` (never written to disk)
    profile_spec: Profile | None = field(default=None, repr=False, compare=False)

    def resolved(self) -> "ExperimentConfig":
        """Fill profile defaults (trials, refit), the run dir and the name; validate everything.

        The profile is looked up once, here, and carried as ``profile_spec``."""
        spec = self.profile_spec
        profile = spec if spec is not None and spec.name == self.profile else get_profile(self.profile)
        if not self.models:
            raise ProtocolError(
                "no model given: pass --model NAME (see `resectbench list models`) "
                "or list models in the experiment file"
            )
        labels = [m.label for m in self.models]
        dupes = sorted({x for x in labels if labels.count(x) > 1})
        if dupes:
            raise ProtocolError(f"model label(s) {', '.join(dupes)} used twice; give each a distinct label")
        imported = self.protocol.folds or self.protocol.folds_column
        proto = replace(
            self.protocol,
            trials=self.protocol.trials if self.protocol.trials is not None else profile.trials,
            refit=self.protocol.refit if self.protocol.refit is not None else getattr(profile, "refit", True),
            # imported folds say how many they are when they are read (build_splits)
            outer_folds=5 if self.protocol.outer_folds is None and not imported else self.protocol.outer_folds,
        )
        if proto.folds and Path(proto.folds).exists():  # workers may start in another directory
            proto.folds = str(Path(proto.folds).resolve())
        proto.validate()
        run_dir = self.run_dir or str(Path("runs") / default_run_name(self))
        name = self.name or Path(run_dir).resolve().name
        data = self.data
        if data.path and Path(data.path).exists():  # workers may start in another directory
            data = replace(data, path=str(Path(data.path).resolve()))
        if data.data_dictionary and Path(data.data_dictionary).exists():
            data = replace(data, data_dictionary=str(Path(data.data_dictionary).resolve()))
        if isinstance(data.external, str) or not all(isinstance(v, str) for v in data.external):
            raise ProtocolError(f"data.external must be a list of paths, got {data.external!r}")
        if not all(isinstance(e, ExternalSpec) for e in data.externals):
            raise ProtocolError(f"data.externals must be a list of ExternalSpec, got {data.externals!r}")
        externals = [
            replace(e, path=_local(e.path), data_dictionary=_local(e.data_dictionary) if e.data_dictionary else None)
            for e in data.externals
        ]
        twice = sorted({e.path for e in externals if [x.path for x in externals].count(e.path) > 1})
        if twice:
            raise ProtocolError(
                f"data.externals lists {', '.join(twice)} twice; give each cohort's options in one entry"
            )
        external = list(dict.fromkeys([*map(_local, data.external), *(e.path for e in externals)]))
        data = replace(data, external=external, externals=externals)
        return replace(self, protocol=proto, run_dir=run_dir, name=name, data=data, profile_spec=profile)

    def to_dict(self) -> dict:
        d = asdict(replace(self, profile_spec=None))
        d.pop("profile_spec")
        d["models"] = [asdict(m) for m in self.models]
        return d

    def to_toml(self) -> str:
        return dumps_toml(_drop_none(self.to_dict()))

    @classmethod
    def from_dict(cls, data: dict) -> "ExperimentConfig":
        data = dict(data)
        valid = [f.name for f in fields(cls) if f.name != "profile_spec"]
        unknown = set(data) - set(valid)
        if unknown:
            raise ProtocolError(f"unknown experiment key(s) {', '.join(sorted(unknown))}; valid: {', '.join(valid)}")
        # models may also be recipe names: checked below, where they are built
        _check_types(cls, {k: v for k, v in data.items() if k != "models"}, "")
        models = data.pop("models", [])
        if not isinstance(models, list):
            raise ProtocolError(f"models must be a list of recipe names or [[models]] tables, got {models!r}")
        models = [ModelSpec(name=m) if isinstance(m, str) else _build(ModelSpec, m, "models") for m in models]
        protocol = _build(ProtocolConfig, data.pop("protocol", {}), "protocol")
        if protocol.timeout == 0:
            protocol.timeout = None
        data_cfg = _build(DataConfig, data.pop("data", {}), "data")
        if data_cfg.path == "":
            data_cfg.path = None
        if data_cfg.data_dictionary == "":
            data_cfg.data_dictionary = None
        return cls(models=models, protocol=protocol, data=data_cfg, **data)

    @classmethod
    def from_toml(cls, path: str | Path) -> "ExperimentConfig":
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ProtocolError(f"experiment file {path} does not exist") from None
        except IsADirectoryError:
            raise ProtocolError(f"experiment file {path} is a folder; give the path of a .toml file") from None
        except OSError as exc:
            raise ProtocolError(f"experiment file {path} cannot be read: {exc.strerror or exc}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ProtocolError(f"experiment file {path} is not valid TOML: {exc}") from None
        try:
            return cls.from_dict(data)
        except ProtocolError as exc:
            raise ProtocolError(f"experiment file {path}: {exc}") from None


def _local(path: str) -> str:
    """``path`` made absolute when it exists (workers may start in another directory), else as given."""
    return str(Path(path).resolve()) if Path(path).exists() else path


def _build(kind, data: dict, section: str):
    if not isinstance(data, dict):
        raise ProtocolError(f"[{section}] must be a table, got {data!r}")
    valid = {f.name for f in fields(kind)}
    unknown = set(data) - valid
    if unknown:
        raise ProtocolError(
            f"unknown key(s) {', '.join(sorted(unknown))} in [{section}]; valid: {', '.join(sorted(valid))}"
        )
    lacking = [
        f.name for f in fields(kind) if f.default is MISSING and f.default_factory is MISSING and f.name not in data
    ]
    if lacking:
        raise ProtocolError(f"[{section}] lacks the key(s) {', '.join(lacking)}")
    _check_types(kind, data, f"{section}.")
    hints = get_type_hints(kind)
    tables = {
        key: [_build(_table_kind(hints[key]), item, f"{section}.{key}[{i}]") for i, item in enumerate(value)]
        for key, value in data.items()
        if _table_kind(hints[key])
    }
    return kind(**{**data, **tables})


#: the field types a TOML value is checked against, with what the message asks for
_KINDS = {
    bool: "true or false",
    int: "a whole number",
    float: "a number",
    str: "a string",
    list[str]: "a list of strings",
    dict[str, Any]: "a table",
}


def _table_kind(hint):
    """The dataclass ``X`` of a ``list[X]`` field (a list of tables, e.g. ``[[data.externals]]``), else None."""
    args = get_args(hint)
    return args[0] if get_origin(hint) is list and args and is_dataclass(args[0]) else None


def _fits(value, hint) -> bool:
    if hint is bool:
        return isinstance(value, bool)
    if isinstance(value, bool):  # TOML's true is not the number 1, nor "true" a string
        return False
    if hint is float:
        return isinstance(value, (int, float))
    if hint == list[str]:
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    return isinstance(value, get_origin(hint) or hint)


def _check_types(kind, data: dict, prefix: str) -> None:
    """Each value of ``data`` against the type of ``kind``'s field of that name (``int | None`` also takes
    None; a list of dataclasses takes a list of tables, each checked where it is built); fields of other types
    (sections) are checked where they are built."""
    hints = get_type_hints(kind)
    for key, value in data.items():
        hint, args = hints[key], get_args(hints[key])
        if type(None) in args:
            if value is None:
                continue
            hint = next(a for a in args if a is not type(None))
        if hint in _KINDS and not _fits(value, hint):
            raise ProtocolError(f"{prefix}{key} must be {_KINDS[hint]}, got {value!r}")
        if _table_kind(hint) and not (isinstance(value, list) and all(isinstance(v, dict) for v in value)):
            raise ProtocolError(f"{prefix}{key} must be a list of tables ([[{prefix}{key}]]), got {value!r}")


#: the rows a reader needs beside any model, at a cost of seconds: chance and the clinical variables alone
#: (the Bayes-optimal ceiling of a synthetic cohort is added by the leaderboard itself)
REFERENCE_MODELS = ("dummy", "clinical-sklearn")


def with_references(specs: list[ModelSpec]) -> list[ModelSpec]:
    """``specs`` followed by the reference rows (:data:`REFERENCE_MODELS`) they do not already hold."""
    labels = {s.label for s in specs}
    return [*specs, *(ModelSpec(name=r) for r in REFERENCE_MODELS if r not in labels)]


def default_run_name(config: ExperimentConfig) -> str:
    own = [m for m in config.models if m.label not in REFERENCE_MODELS] or config.models
    models = "+".join(m.label for m in own)
    if len(models) > 60:
        models = f"{len(config.models)}-models"
    return f"{models}-{config.profile}-s{config.protocol.seed}"


def merge_overrides(
    base: ExperimentConfig,
    *,
    models: list[str] | None = None,
    parts: dict[str, str | None] | None = None,
    protocol: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
    references: bool = False,
    params: dict[str, Any] | None = None,
    **top: Any,
) -> ExperimentConfig:
    """``base`` (an experiment file, or the defaults) with command-line values on top.

    ``models`` replaces the file's models; ``parts`` (backbone/fusion/clinical_encoder/loss_schedule)
    composes every model (default ``swinunetr-fusion``); in ``protocol``, ``data`` and ``top`` (profile,
    device, run_dir, storage, name) a value of None keeps the file's. ``data["allow_missing_variables"]``
    and ``data["external"]`` add to the file's lists and ``data["skip_invalid"]`` can only switch it on.
    ``data["external_dictionary"]`` and ``data["external_allow_missing"]``, ``(NAME, VALUE)`` pairs
    (``--external-dictionary NAME=PATH``, ``--external-allow-missing NAME=VARIABLE``), set options of the
    external cohort named NAME (:func:`external_name`), the file's or one given here.
    ``references``: models named here (``models`` or ``parts``) get the reference rows beside them
    (:func:`with_references`); an experiment file's own list is left as written. ``params`` (``--param``)
    are fixed hyper-parameters of the models given (or the file's), over their own; not of the reference rows
    added beside them.
    """
    specs = [ModelSpec(name=m) for m in models] if models else list(base.models)
    if params:
        specs = [replace(s, params={**s.params, **params}) for s in specs]
    if parts and any(parts.values()):
        specs = [compose_spec(s.name, parts, s.params) for s in (specs or [ModelSpec("swinunetr-fusion")])]
    if references and (models or (parts and any(parts.values()))):
        specs = with_references(specs)
    proto = replace(
        base.protocol,
        **{k: (str(v) if isinstance(v, Path) else v) for k, v in (protocol or {}).items() if v is not None},
    )
    data = dict(data or {})
    allow = [*base.data.allow_missing_variables, *(data.pop("allow_missing_variables", None) or [])]
    external = [*base.data.external, *(str(p) for p in (data.pop("external", None) or []))]
    externals = _external_options(
        external,
        base.data.externals,
        [("--external-dictionary", n, str(v)) for n, v in data.pop("external_dictionary", None) or []]
        + [("--external-allow-missing", n, v) for n, v in data.pop("external_allow_missing", None) or []],
    )
    skip = bool(data.pop("skip_invalid", False)) or base.data.skip_invalid
    data_cfg = replace(
        base.data,
        allow_missing_variables=allow,
        external=external,
        externals=externals,
        skip_invalid=skip,
        **{k: (str(v) if isinstance(v, Path) else v) for k, v in data.items() if v is not None},
    )
    top = {k: (str(v) if isinstance(v, Path) else v) for k, v in top.items() if v is not None}
    return replace(base, models=specs, protocol=proto, data=data_cfg, **top)


def _external_options(external: list[str], specs: list[ExternalSpec], options) -> list[ExternalSpec]:
    """``specs`` with the command line's ``(option, NAME, VALUE)`` options set on the external cohort named
    NAME (one of ``external`` or of ``specs``), refused naming the cohorts when none has that name."""
    out = {_local(s.path): replace(s, allow_missing_variables=list(s.allow_missing_variables)) for s in specs}
    by_name = {external_name(p): p for p in dict.fromkeys([*map(_local, external), *out])}
    for option, name, value in options:
        if name not in by_name:
            known = ", ".join(by_name) or "none; add one with --external PATH"
            raise ProtocolError(
                f"{option} {name}={value}: no external cohort is named {name!r} (external cohorts: {known})"
            )
        spec = out.setdefault(by_name[name], ExternalSpec(by_name[name]))
        if option == "--external-dictionary":
            spec.data_dictionary = value
        else:
            spec.allow_missing_variables.append(value)
    return list(out.values())


def compose_spec(recipe: str, parts: dict[str, str | None], params: dict | None = None) -> ModelSpec:
    """A model built from components (``--backbone/--fusion/...``) on top of recipe ``recipe``."""
    chosen = {k: v for k, v in parts.items() if v}
    label = "+".join([recipe, *(chosen[k] for k in COMPOSE_KEYS if k in chosen)])
    return ModelSpec(name=recipe, label=label, params={**(params or {}), **chosen})


# -- a small TOML writer for the config's own structure (tomllib reads only) --------------------
def _drop_none(value):
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_drop_none(v) for v in value]
    return value


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise ProtocolError(f"cannot write {value!r} ({type(value).__name__}) to TOML")


def _key(key: str) -> str:
    return key if re.match(r"^[A-Za-z0-9_-]+$", key) else _toml_value(key)


def dumps_toml(data: dict) -> str:
    lines, tables = [], []
    for k, v in data.items():
        if isinstance(v, dict):
            tables.append((k, v))
        elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            tables.append((k, v))
        else:
            lines.append(f"{_key(k)} = {_toml_value(v)}")
    for k, v in tables:
        if isinstance(v, dict):
            lines += ["", f"[{_key(k)}]"] + [f"{_key(kk)} = {_toml_value(vv)}" for kk, vv in v.items()]
        else:
            for item in v:
                lines += ["", f"[[{_key(k)}]]"] + [f"{_key(kk)} = {_toml_value(vv)}" for kk, vv in item.items()]
    return "\n".join(lines) + "\n"
