"""Component registries (after timm): one per component kind.

Built-in components are plain factories (classes or functions) marked with :func:`component`
in the modules of their package; the built-in plugin registers them through the same pluggy
hooks as third-party plugins (see :mod:`resectbench.plugins`). Plugins may also call
``registry.register(name, ...)`` directly on the registry their hook receives.
"""

from __future__ import annotations

import contextvars
import difflib
import fnmatch
import importlib
import inspect
import pkgutil
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from . import search_space as ss
from .errors import RegistryError

_NAME_RE = re.compile(r"^[a-z0-9]+(?:[.-][a-z0-9]+)*$")
_MARK = "__resectbench_component__"

# Set by the plugin manager while a plugin's hook runs, so registrations know their provider.
current_provider: contextvars.ContextVar[str] = contextvars.ContextVar("current_provider", default="user")

# Called before every lookup so that plugins are loaded on first use. The plugin manager installs it
# (``set_loader``); the registry itself knows nothing of plugins.
_loader: Callable[[], None] | None = None


def set_loader(loader: Callable[[], None] | None) -> None:
    """Install the function every lookup calls first (the plugin manager's ``ensure_loaded``)."""
    global _loader
    _loader = loader


@dataclass
class Entry:
    name: str
    kind: str
    factory: Callable[..., Any]
    tags: tuple[str, ...] = ()
    description: str = ""
    search_space: ss.SearchSpaceLike = None
    provider: str = "user"
    extra: dict[str, Any] = field(default_factory=dict)

    def parameters(self) -> dict[str, inspect.Parameter]:
        target = self.factory.__init__ if inspect.isclass(self.factory) else self.factory
        params = dict(inspect.signature(target).parameters)
        if inspect.isclass(self.factory):
            params.pop("self", None)
        return params


def component(
    name: str,
    *,
    tags: Iterable[str] = (),
    description: str | None = None,
    search_space: ss.SearchSpaceLike = None,
    **extra,
):
    """Mark a factory as a component; registered when the built-in plugin scans its package."""

    def mark(factory):
        setattr(
            factory,
            _MARK,
            dict(name=name, tags=tuple(tags), description=description, search_space=search_space, extra=extra),
        )
        return factory

    return mark


def _first_doc_line(obj) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.strip().split("\n\n")[0].replace("\n", " ")


class Registry:
    """A named collection of component factories of one kind."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    # -- registration ---------------------------------------------------------------------
    def register(
        self,
        name: str,
        *,
        tags: Iterable[str] = (),
        description: str | None = None,
        search_space: ss.SearchSpaceLike = None,
        override: bool = False,
        **extra,
    ):
        """Decorator registering a factory under a unique kebab-case ``name``."""

        def decorate(factory):
            self.add(
                factory,
                name=name,
                tags=tags,
                description=description,
                search_space=search_space,
                override=override,
                **extra,
            )
            return factory

        return decorate

    def add(
        self,
        factory,
        *,
        name: str,
        tags: Iterable[str] = (),
        description: str | None = None,
        search_space: ss.SearchSpaceLike = None,
        override: bool = False,
        **extra,
    ) -> Entry:
        if not _NAME_RE.match(name):
            raise RegistryError(f"{self.kind} name {name!r} is not kebab-case (lowercase letters, digits, '-' or '.')")
        provider = current_provider.get()
        if name in self._entries and not override:
            other = self._entries[name].provider
            raise RegistryError(
                f"{self.kind} {name!r} is already registered by {other!r}; {provider!r} tried to register it "
                "again (pass override=True to replace it on purpose)"
            )
        entry = Entry(
            name=name,
            kind=self.kind,
            factory=factory,
            tags=tuple(tags),
            description=description or _first_doc_line(factory),
            search_space=search_space,
            provider=provider,
            extra=extra,
        )
        self._entries[name] = entry
        return entry

    def add_marked(self, package: str) -> list[str]:
        """Register every factory marked with :func:`component` in ``package`` and its submodules."""
        added = []
        for module in _walk(package):
            for obj in vars(module).values():
                meta = getattr(obj, _MARK, None)
                # only the module that defines the factory registers it (no double imports)
                if meta and getattr(obj, "__module__", None) == module.__name__:
                    self.add(
                        obj,
                        name=meta["name"],
                        tags=meta["tags"],
                        description=meta["description"],
                        search_space=meta["search_space"],
                        **meta["extra"],
                    )
                    added.append(meta["name"])
        return added

    def unregister(self, name: str) -> None:
        self._entries.pop(name, None)

    def clear(self) -> None:
        """Forget every entry (the plugin manager's reset)."""
        self._entries.clear()

    # -- lookup ---------------------------------------------------------------------------
    def _loaded(self) -> dict[str, Entry]:
        if _loader is not None:
            _loader()
        return self._entries

    def get(self, name: str) -> Entry:
        entries = self._loaded()
        if name not in entries:
            close = difflib.get_close_matches(name, list(entries), n=5, cutoff=0.4)
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
            raise RegistryError(
                f"unknown {self.kind} {name!r}.{hint} Available: {', '.join(sorted(entries)) or '(none)'}. "
                f"See `resectbench list {self.kind}`."
            )
        return entries[name]

    def __contains__(self, name: str) -> bool:
        return name in self._loaded()

    def __iter__(self):
        return iter(sorted(self._loaded()))

    def __len__(self) -> int:
        return len(self._loaded())

    def list(self, pattern: str = "*", tags: Iterable[str] | None = None) -> list[str]:
        """Names matching an fnmatch ``pattern`` that carry all ``tags``."""
        wanted = set(tags or ())
        return sorted(n for n, e in self._loaded().items() if fnmatch.fnmatchcase(n, pattern) and wanted <= set(e.tags))

    def create(self, name: str, /, **kwargs):
        """Build a component, checking ``kwargs`` against the factory signature first."""
        entry = self.get(name)
        params = entry.parameters()
        takes_var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        valid = [
            n
            for n, p in params.items()
            if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        ]
        unknown = [k for k in kwargs if k not in valid]
        if unknown and not takes_var_kw:
            hints = []
            for k in unknown:
                close = difflib.get_close_matches(k, valid, n=1)
                hints.append(f"{k!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
            raise RegistryError(
                f"{self.kind} {name!r} got unknown parameter(s) {', '.join(hints)}. "
                f"Valid parameters: {', '.join(valid) or '(none)'}."
            )
        missing = [
            n
            for n, p in params.items()
            if p.default is inspect.Parameter.empty
            and p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
            and n not in kwargs
        ]
        if missing:
            raise RegistryError(
                f"{self.kind} {name!r} needs parameter(s) {', '.join(missing)}. Valid parameters: {', '.join(valid)}."
            )
        return entry.factory(**kwargs)

    def describe(self, name: str) -> dict[str, Any]:
        """Parameters, defaults, tags, search space and provider of a component, as plain data."""
        entry = self.get(name)
        params = {}
        for pname, p in entry.parameters().items():
            if p.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
                continue
            params[pname] = {
                "default": None if p.default is inspect.Parameter.empty else p.default,
                "required": p.default is inspect.Parameter.empty,
                "annotation": ""
                if p.annotation is inspect.Parameter.empty
                else (
                    p.annotation
                    if isinstance(p.annotation, str)
                    else getattr(p.annotation, "__name__", str(p.annotation))
                ),
            }
        return {
            "name": entry.name,
            "kind": entry.kind,
            "description": entry.description,
            "doc": inspect.getdoc(entry.factory) or "",
            "tags": list(entry.tags),
            "provider": entry.provider,
            "factory": f"{entry.factory.__module__}.{entry.factory.__qualname__}",
            "parameters": params,
            "search_space": ss.describe(entry.search_space),
            **({"extra": entry.extra} if entry.extra else {}),
        }


def _walk(package: str):
    module = importlib.import_module(package)
    yield module
    if hasattr(module, "__path__"):
        for info in pkgutil.walk_packages(module.__path__, prefix=package + "."):
            yield importlib.import_module(info.name)


# One registry per component kind. New kinds can be added with ``add_kind``.
backbones = Registry("backbones")
clinical_encoders = Registry("clinical_encoders")
fusions = Registry("fusions")
loss_schedules = Registry("loss_schedules")
balancing = Registry("balancing")
models = Registry("models")

REGISTRIES: dict[str, Registry] = {
    r.kind: r for r in (backbones, clinical_encoders, fusions, loss_schedules, balancing, models)
}


Snapshot = dict[str, dict[str, Entry]]
#: per kind: name -> the entry it replaced (None when the name was new)
Changes = dict[str, dict[str, "Entry | None"]]


def snapshot() -> Snapshot:
    """The entries of every registry now (without loading plugins): compare or roll back later."""
    return {kind: dict(r._entries) for kind, r in REGISTRIES.items()}


def changes_since(before: Snapshot) -> Changes:
    """Names added or replaced in each registry since ``before`` (with what each replaced)."""
    out: Changes = {}
    for kind, r in REGISTRIES.items():
        old = before.get(kind, {})
        changed = {n: old.get(n) for n, e in r._entries.items() if old.get(n) is not e}
        if changed:
            out[kind] = dict(sorted(changed.items()))
    return out


def revert(changes: Changes) -> None:
    """Undo ``changes``: new names are removed, replaced entries come back."""
    for kind, names in changes.items():
        r = REGISTRIES[kind]
        for name, previous in names.items():
            if previous is None:
                r._entries.pop(name, None)
            else:
                r._entries[name] = previous


def clear_all() -> None:
    for r in REGISTRIES.values():
        r.clear()


def add_kind(kind: str) -> Registry:
    """Open a new component kind (e.g. ``augmentations``) for plugins and later issues."""
    return REGISTRIES.setdefault(kind, Registry(kind))


def get_registry(kind: str) -> Registry:
    aliases = {
        "backbone": "backbones",
        "clinical": "clinical_encoders",
        "clinical-encoders": "clinical_encoders",
        "clinical_encoder": "clinical_encoders",
        "fusion": "fusions",
        "loss": "loss_schedules",
        "loss-schedules": "loss_schedules",
        "loss_schedule": "loss_schedules",
        "balancing-strategies": "balancing",
        "balancing_strategy": "balancing",
        "model": "models",
        "recipes": "models",
    }
    kind = aliases.get(kind, kind)
    if kind not in REGISTRIES:
        raise RegistryError(f"unknown component kind {kind!r}. Kinds: {', '.join(REGISTRIES)}")
    return REGISTRIES[kind]


def kinds_of(name: str) -> list[str]:
    """Every kind that has a component called ``name`` (a name may exist in several kinds)."""
    return [kind for kind, registry in REGISTRIES.items() if name in registry]


def find(name: str) -> Entry:
    """Look a component up by name across all kinds; models win when a name exists in several."""
    kinds = kinds_of(name)
    if kinds:
        return REGISTRIES["models" if "models" in kinds else kinds[0]].get(name)
    everything = [n for r in REGISTRIES.values() for n in r.list()]
    close = difflib.get_close_matches(name, everything, n=5, cutoff=0.4)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise RegistryError(f"no component named {name!r} in any registry.{hint} See `resectbench list`.")
