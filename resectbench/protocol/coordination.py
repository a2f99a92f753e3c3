"""Shared state of a benchmark in its Optuna storage: metadata, unit claims and unit results.

One storage (SQLite file in the run dir by default, a PostgreSQL/MySQL URL, or a journal file on a
shared disk) holds, per benchmark ``NAME``:

- ``NAME::meta``: a study whose user attributes hold the resolved configuration, the data and
  split fingerprints and the splits, so a worker can join with only ``--storage`` and ``--benchmark``;
- ``NAME::LABEL::fold_R_K``: the Optuna study tuning one unit (model LABEL, repeat R, outer fold K);
- ``NAME::claim::LABEL::fold_R_K::G``: the claim on that unit, generation G. Creating a study with a
  given name succeeds in exactly one process (the storage enforces unique names), which makes
  claiming atomic on every backend. The holder refreshes a heartbeat; a claim whose heartbeat is
  older than ``stale_after`` seconds is taken over by creating generation G+1. When the unit is
  done, its complete result (predictions, metrics, trials ...) is stored on the claim, so any
  process with access to the storage can write it into a run directory.
"""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.exceptions import DuplicatedStudyError
from optuna.study import StudyDirection

from ..vocabulary import RunFiles as F
from .errors import ProtocolError

JOURNAL_PREFIX = "journal:"
JOURNAL_SUFFIXES = (".log", ".journal", ".jsonl")


def open_storage(url: str | None, run_dir: Path | None = None):
    """An Optuna storage for ``url`` (None: SQLite file ``optuna.db`` in ``run_dir``)."""
    if url is None:
        if run_dir is None:
            raise ProtocolError("no storage given and no run directory to put the default SQLite file in")
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{Path(run_dir).resolve() / F.OPTUNA_DB}"
    if url.startswith(JOURNAL_PREFIX) or (("://" not in url) and url.endswith(JOURNAL_SUFFIXES)):
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

        path = url[len(JOURNAL_PREFIX) :] if url.startswith(JOURNAL_PREFIX) else url
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        # the open(O_EXCL) lock works on network file systems, unlike the symlink lock
        return JournalStorage(JournalFileBackend(path, lock_obj=JournalFileOpenLock(path)))
    if "://" not in url:
        raise ProtocolError(
            f"--storage {redact(url)!r} is neither a database URL (postgresql://user@host/db, "
            f"sqlite:///path.db) nor a journal file (journal:PATH or a path ending in .log)"
        )
    sqlite = url.startswith("sqlite")
    engine_kwargs = {"connect_args": {"timeout": 60}} if sqlite else {"pool_pre_ping": True}
    try:
        if sqlite:
            _sqlite_wal(url)
        storage = optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)
    except Exception as exc:  # noqa: BLE001 - driver errors vary; say which storage failed
        raise ProtocolError(
            f"cannot open storage {redact(url)}: {type(exc).__name__}: {scrub(str(exc), url)}"
        ) from None
    if sqlite:
        _sqlite_fast_commits(storage.engine)
    return storage


def _sqlite_wal(url: str) -> None:
    """Write-ahead logging (persistent in the file): readers never block the writer."""
    import sqlite3

    path = url.split(":///", 1)[-1]
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(path, timeout=60) as conn:
            conn.execute("PRAGMA journal_mode=WAL")


def _sqlite_fast_commits(engine) -> None:
    """synchronous=NORMAL: in WAL mode a commit no longer waits for the disk (an fsync of ~10 ms per
    Optuna call), and the database still survives a crash of the process (not a power cut mid-commit)."""
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _pragma(dbapi_connection, _record):
        dbapi_connection.execute("PRAGMA synchronous=NORMAL")

    engine.dispose()  # pooled connections were opened before the listener existed


#: ``user:password@`` in a URL, with or without a scheme
_USERINFO = re.compile(r"(?P<user>[^\s:/@]+):(?P<password>[^\s@/]*)@")


def redact(url: str | None) -> str | None:
    """The storage URL without its password (for the manifest and messages)."""
    if url is None:
        return None
    if "://" in url:
        try:
            from sqlalchemy.engine import make_url

            return make_url(url).render_as_string(hide_password=True)
        except Exception:  # noqa: BLE001 - not a URL SQLAlchemy parses: mask by pattern below
            pass
    return _USERINFO.sub(lambda m: f"{m['user']}:***@", url)


def scrub(text: str, url: str | None) -> str:
    """``text`` (e.g. a database driver's error) with the password of ``url`` masked wherever it appears."""
    from urllib.parse import unquote

    m = _USERINFO.search(url.split("://", 1)[-1]) if url else None
    if not m or not m["password"]:
        return text
    for secret in {m["password"], unquote(m["password"])}:
        text = text.replace(secret, "***")
    return text


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def _holder_gone(worker: str) -> bool:
    """True when the claim's holder ran on this host and its process no longer exists (a crash)."""
    host, _, rest = worker.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def unit_study_name(benchmark: str, label: str, key: str) -> str:
    return f"{benchmark}::{label}::{key}"


@dataclass
class ClaimState:
    generation: int
    worker: str
    heartbeat: float
    done: bool


class UnitBoard:
    """Claims and results of the units of one benchmark in a shared storage."""

    def __init__(
        self,
        storage,
        benchmark: str,
        *,
        worker: str | None = None,
        stale_after: float = 600.0,
        heartbeat_every: float = 20.0,
    ):
        self.storage = storage
        self.benchmark = benchmark
        self.worker = worker or worker_id()
        self.stale_after = stale_after
        self.heartbeat_every = heartbeat_every
        self._study_ids: dict[str, int] = {}  # a study's id never changes: look each up once

    def _study_id(self, name: str) -> int:
        if name not in self._study_ids:
            self._study_ids[name] = self.storage.get_study_id_from_name(name)
        return self._study_ids[name]

    # -- benchmark metadata ----------------------------------------------------------------
    @property
    def meta_name(self) -> str:
        return f"{self.benchmark}::meta"

    def read_meta(self) -> dict | None:
        try:
            study_id = self.storage.get_study_id_from_name(self.meta_name)
        except KeyError:
            return None
        attrs = self.storage.get_study_user_attrs(study_id)
        return json.loads(attrs["meta"]) if "meta" in attrs else None

    def publish_meta(self, meta: dict) -> dict:
        """Store ``meta`` for this benchmark, or check it against the one stored (same data/splits)."""
        try:
            study_id = self.storage.create_new_study([StudyDirection.MAXIMIZE], self.meta_name)
        except DuplicatedStudyError:
            existing = None
            for _ in range(100):  # its creator writes the attribute right after creating the study
                existing = self.read_meta()
                if existing is not None:
                    break
                time.sleep(0.1)
            if existing is not None:
                for what in ("data_fingerprint", "split_fingerprint"):
                    if existing.get(what) != meta.get(what):
                        raise ProtocolError(
                            f"benchmark {self.benchmark!r} in this storage was started with a different "
                            f"{what.split('_')[0]} ({what} {existing.get(what)} there, {meta.get(what)} here); "
                            "use another benchmark name (--name) or storage"
                        )
            # same data and splits: the newest configuration (e.g. with models added) is what workers read
            study_id = self.storage.get_study_id_from_name(self.meta_name)
        self.storage.set_study_user_attr(study_id, "meta", json.dumps(meta))
        return meta

    # -- claims -----------------------------------------------------------------------------
    def _claim_prefix(self, label: str, key: str) -> str:
        return f"{self.benchmark}::claim::{label}::{key}::"

    def claims(self, label: str, key: str) -> list[tuple[int, int]]:
        """(generation, study id) of every claim on a unit, oldest first."""
        prefix = self._claim_prefix(label, key)
        found = [
            (int(s.study_name[len(prefix) :]), self._study_id(s.study_name))
            for s in self.storage.get_all_studies()
            if s.study_name.startswith(prefix)
        ]
        return sorted(found)

    def all_claims(self) -> dict[tuple[str, str], list[tuple[int, int]]]:
        """Claims of every unit in one pass over the storage."""
        prefix = f"{self.benchmark}::claim::"
        out: dict[tuple[str, str], list[tuple[int, int]]] = {}
        for s in self.storage.get_all_studies():
            if s.study_name.startswith(prefix):
                label, key, gen = s.study_name[len(prefix) :].rsplit("::", 2)
                out.setdefault((label, key), []).append((int(gen), self._study_id(s.study_name)))
        return {k: sorted(v) for k, v in out.items()}

    def state(self, study_id: int, generation: int) -> ClaimState:
        attrs = self.storage.get_study_user_attrs(study_id)
        return ClaimState(
            generation, attrs.get("worker", ""), float(attrs.get("heartbeat", 0.0)), bool(attrs.get("done", False))
        )

    def status(self, label: str, key: str, claims: list[tuple[int, int]] | None = None) -> str:
        """``done``, ``running`` (claimed, heartbeat fresh), ``stale`` or ``free``."""
        claims = self.claims(label, key) if claims is None else claims
        if not claims:
            return "free"
        states = [self.state(sid, gen) for gen, sid in claims]
        if any(s.done for s in states):
            return "done"
        last = states[-1]
        if _holder_gone(last.worker):
            return "stale"
        if last.heartbeat == 0.0:  # just created; the holder writes its first heartbeat right away
            return "running"
        return "running" if time.time() - last.heartbeat < self.stale_after else "stale"

    def try_claim(self, label: str, key: str) -> "Claim | None":
        """Claim a free or stale unit; None when it is done or held by a live worker."""
        claims = self.claims(label, key)
        status = self.status(label, key, claims)
        if status in ("done", "running"):
            return None
        generation = claims[-1][0] + 1 if claims else 0
        name = self._claim_prefix(label, key) + str(generation)
        try:
            study_id = self.storage.create_new_study([StudyDirection.MAXIMIZE], name)
        except DuplicatedStudyError:  # another worker was faster
            return None
        claim = Claim(self, study_id, label, key, generation)
        claim.start()
        return claim

    def result(self, label: str, key: str, claims: list[tuple[int, int]] | None = None) -> dict | None:
        """The stored result payload of a done unit (first finished generation), else None."""
        for _gen, sid in self.claims(label, key) if claims is None else claims:
            attrs = self.storage.get_study_user_attrs(sid)
            if attrs.get("done") and "result" in attrs:
                return json.loads(attrs["result"])
        return None


class Claim:
    """A held unit: heartbeats in a background thread until completed or released."""

    def __init__(self, board: UnitBoard, study_id: int, label: str, key: str, generation: int):
        self.board, self.study_id, self.label, self.key, self.generation = board, study_id, label, key, generation
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _beat(self) -> None:
        self.board.storage.set_study_user_attr(self.study_id, "heartbeat", time.time())

    def start(self) -> None:
        storage = self.board.storage
        storage.set_study_user_attr(self.study_id, "worker", self.board.worker)
        self._beat()
        self._thread = threading.Thread(target=self._loop, name=f"heartbeat-{self.label}-{self.key}", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.board.heartbeat_every):
            try:
                self._beat()
            except Exception:  # noqa: BLE001 - a missed beat is retried; staleness needs many
                pass

    def _stop_beating(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def complete(self, payload: dict) -> None:
        self._stop_beating()
        storage = self.board.storage
        storage.set_study_user_attr(self.study_id, "result", json.dumps(payload))
        storage.set_study_user_attr(self.study_id, "finished", time.time())
        storage.set_study_user_attr(self.study_id, "done", True)

    def release(self) -> None:
        """Give the unit up (error or Ctrl-C): mark the claim stale so anyone may take it at once."""
        self._stop_beating()
        try:
            self.board.storage.set_study_user_attr(self.study_id, "heartbeat", -1.0e12)
        except Exception:  # noqa: BLE001 - the storage may be what failed; staleness frees it later
            pass
