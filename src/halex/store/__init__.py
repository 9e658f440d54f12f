"""Persistent result store on :mod:`ase.db` (SQLite file by default, PostgreSQL URL too).

One row per computed structure. Rows are keyed by :func:`result_key`, a SHA-256 of
the structure (numbers, positions, cell, pbc), the engine (name, version, settings)
and the task (single point or relaxation parameters), so asking twice is a cache hit
that costs nothing.

Row key-value pairs (queryable with ``halex db list`` or ``ase db``):

=============  ===============================================================
``hkey``       result key (hex SHA-256)
``status``     ``"done"`` or ``"running"`` (a relaxation checkpoint)
``task``       ``"energy"`` or ``"relax"``
``engine``     engine name; ``engine_version`` its version string
``label``      free text given by the caller (e.g. a model name)
``step``       optimizer steps taken; ``converged`` whether fmax was reached
``fmax_target``  requested maximum force (eV/Å); ``fmax_final`` the reached one
=============  ===============================================================

The row's ``data`` holds the engine settings, the task, ``atoms.info`` and every
per-atom array that ASE's database does not store itself (``domain``, ``layer``,
``role``, ...), so they survive the round trip.

Concurrency: SQLite writes go through ASE's lock file plus SQLite's own locking;
the get-or-compute sequence (:meth:`ResultStore.get_or_compute`) holds an extra ``fcntl`` lock, so two processes
writing to one file do not corrupt it or duplicate work.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from halex.errors import StoreError

log = logging.getLogger(__name__)

__all__ = ["ResultStore", "StoreEntry", "Lookup", "result_key", "DEFAULT_DB", "default_store_url"]

DEFAULT_DB = "halex.db"


def default_store_url() -> str:
    """The store every command uses unless given ``--db``: ``$HALEX_DB``, else ``./halex.db``.

    One default for ``relax``, ``energy``, ``electronic``, ``study`` and ``db``, so a study
    reuses what ``relax`` or an earlier study computed, whatever its output folder.
    """
    return os.environ.get("HALEX_DB") or DEFAULT_DB

#: arrays ase.db stores itself
_NATIVE_ARRAYS = {"numbers", "positions", "tags", "momenta", "masses", "initial_magmoms", "initial_charges"}
#: decimals used when hashing coordinates (1e-6 Å)
_DECIMALS = 6


def _canonical(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _canonical(v) for k, v in sorted(obj.items())}
    if isinstance(obj, (list, tuple)):
        return [_canonical(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _canonical(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float):
        return float(repr(obj)) if np.isfinite(obj) else str(obj)
    return obj


def result_key(atoms: Atoms, engine: Mapping[str, Any], task: Mapping[str, Any]) -> str:
    """SHA-256 key of (structure, engine description, task).

    Positions and cell are rounded to 1e-6 Å (so numerically identical inputs that
    went through a text file hash equally); per-atom labels (domain, layer, role) are
    not part of the key because they do not change energies.
    """
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(atoms.numbers, dtype=np.int64).tobytes())
    h.update((np.round(atoms.get_positions(), _DECIMALS) + 0.0).astype(np.float64).tobytes())
    h.update((np.round(atoms.cell.array, _DECIMALS) + 0.0).astype(np.float64).tobytes())
    h.update(np.asarray(atoms.pbc, dtype=bool).tobytes())
    h.update(json.dumps(_canonical({"engine": engine, "task": task}), sort_keys=True).encode())
    return h.hexdigest()


def _encode_arrays(atoms: Atoms) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, values in atoms.arrays.items():
        if name in _NATIVE_ARRAYS:
            continue
        if values.dtype.kind in "USO":
            out[name] = {"str": [str(v) for v in values]}
        else:
            out[name] = np.array(values)
    return out


def _decode_arrays(atoms: Atoms, encoded: Mapping[str, Any]) -> None:
    from halex.arrays import set_arrays

    set_arrays(atoms, {name: np.array(v["str"]) if isinstance(v, Mapping) else np.asarray(v) for name, v in encoded.items()})


def _jsonable_info(info: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in info.items():
        try:
            json.dumps(_canonical(v))
        except TypeError:
            continue
        out[str(k)] = _canonical(v)
    return out


@dataclass
class StoreEntry:
    """A computed result as it goes into the store: structure (with its calculator), pairs and data.

    ``result`` carries the caller's own object (e.g. a relaxation result) back to it;
    it is not stored.
    """

    atoms: Atoms
    kvp: dict[str, Any]
    data: dict[str, Any] = field(default_factory=dict)
    result: Any = None


@dataclass
class Lookup:
    """Outcome of :meth:`ResultStore.get_or_compute`.

    Exactly one of ``row`` (a cache hit) and ``entry`` (computed now) is set.
    """

    row_id: int | None
    row: Any = None
    entry: StoreEntry | None = None

    @property
    def cached(self) -> bool:
        """The result came from the store without computing."""
        return self.entry is None

    @classmethod
    def computed(cls, entry: StoreEntry) -> Lookup:
        """A result computed without a store (no row)."""
        return cls(row_id=None, entry=entry)


class ResultStore:
    """Results of engines on structures, in an ASE database.

    Parameters
    ----------
    url
        Path of an SQLite file (created if needed) or a ``postgresql://`` URL.
    workdir
        Where relaxation trajectories and file-based engine runs are kept
        (default: ``<db stem>.runs/`` next to an SQLite file, ``./halex-runs`` else).
    """

    def __init__(self, url: str | os.PathLike = DEFAULT_DB, *, workdir: str | os.PathLike | None = None) -> None:
        import ase.db

        self.url = str(url)
        self._is_file = not self.url.startswith(("postgresql://", "postgres://", "mysql://", "mariadb://"))
        if self._is_file:
            path = Path(self.url)
            if path.suffix not in (".db", ".sqlite", ".sqlite3"):
                raise StoreError(f"result store {self.url!r}: use a file ending in .db or a postgresql:// URL")
            if path.exists() and not path.is_file():
                raise StoreError(f"result store {self.url!r} exists and is not a file")
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.exists():
                with open(path, "rb") as fh:
                    head = fh.read(16)
                if head and not head.startswith(b"SQLite format 3"):
                    raise StoreError(f"{self.url!r} is not an SQLite database")
        try:
            # No ASE lock file: ase.utils.Lock is a plain file that a process killed with
            # SIGKILL mid-write leaves behind, and every later writer then waits forever.
            # SQLite's own locking (busy timeout) already serialises writers, and
            # get-or-create sequences take the fcntl lock below, which the kernel
            # releases when a process dies.
            self._db = (ase.db.connect(self.url, type="db", append=True, use_lock_file=False) if self._is_file
                        else ase.db.connect(self.url))
        except Exception as exc:
            raise StoreError(f"cannot open result store {self.url!r}: {exc}") from None
        if self._is_file and os.access(Path(self.url).parent, os.W_OK):
            self._create_tables()  # (a store in a read-only folder is only read: no lock file there)
        if workdir is None:
            workdir = Path(self.url).with_suffix(".runs") if self._is_file else Path("halex-runs")
        self.workdir = Path(workdir)

    def _create_tables(self) -> None:
        """Create a new SQLite store's tables now, under :meth:`lock`.

        ASE creates them on first use, one statement at a time; a second process opening
        the same new file in between saw ``systems`` without ``information`` and failed
        ("no such table: information"), e.g. two study workers starting on a fresh store.
        """
        with self.lock():
            try:
                self._db.count()
            except Exception as exc:
                raise StoreError(f"cannot open result store {self.url!r}: {exc}") from None

    # -- locking ---------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Inter-process lock around get-or-create sequences (no-op for server databases)."""
        if not self._is_file:
            yield
            return
        with _flocked(Path(self.url + ".halex-lock")):
            yield

    @contextlib.contextmanager
    def key_lock(self, key: str) -> Iterator[None]:
        """Exclusive lock on computing ``key``, held for the whole computation.

        Two processes (or threads) given the same task, e.g. two study steps whose warm
        starts give identical structures, would otherwise share the key's run folder
        (optimizer restart record, trajectory, engine files) and its checkpoint rows, and
        overwrite each other's state mid-run. The second one waits here and then finds the
        first one's result. The lock is an ``flock`` on a file in :meth:`run_dir`, so it
        works for server databases too, across nodes where the run folder is on a shared
        file system with locking (NFS does); a killed holder releases it.
        """
        with _flocked(self.run_dir(key) / ".compute-lock",
                      waiting=f"waiting for another process computing the same result (key {key[:12]})"):
            yield

    # -- queries ---------------------------------------------------------------
    def find(self, key: str, *, status: str = "done"):
        """The first row with ``hkey == key`` and the given status, or None."""
        try:
            for row in self._db.select(hkey=key, status=status, sort="id"):
                return row
        except Exception as exc:
            raise StoreError(f"cannot read result store {self.url!r}: {exc}") from None
        return None

    def rows(self, selection: str | None = None, **kwargs: Any) -> list:
        """Rows matching an ase.db selection string and/or key=value pairs."""
        try:
            return list(self._db.select(selection, sort="id", **kwargs))
        except Exception as exc:
            raise StoreError(f"bad selection {selection!r} for {self.url!r}: {exc}") from None

    def get_row(self, id: int):
        """Row with integer ``id``; raises :class:`StoreError` if absent."""
        try:
            return self._db.get(id=int(id))
        except KeyError:
            raise StoreError(f"no row with id {id} in {self.url!r} (see 'halex db list')") from None
        except (TypeError, ValueError):
            raise StoreError(f"row id must be an integer, got {id!r}") from None

    def count(self, **kwargs: Any) -> int:
        return self._db.count(**kwargs)

    def to_atoms(self, row) -> Atoms:
        """Atoms of ``row`` with energy/forces, per-atom arrays and info restored."""
        atoms = row.toatoms()
        results = {}
        if row.get("energy") is not None:
            results["energy"] = row.energy
        if row.get("forces") is not None:
            results["forces"] = np.array(row.forces)
        data = row.data
        _decode_arrays(atoms, data.get("arrays", {}))
        atoms.info.update(data.get("info", {}))
        if results:
            atoms.calc = SinglePointCalculator(atoms, **results)
        return atoms

    # -- writes ----------------------------------------------------------------
    def write(self, atoms: Atoms, *, key: str, status: str, kvp: Mapping[str, Any], data: Mapping[str, Any], id: int | None = None) -> int:
        """Write (or with ``id`` overwrite) one row; energies/forces come from ``atoms.calc``."""
        payload = dict(data)
        payload["arrays"] = _encode_arrays(atoms)
        payload["info"] = _jsonable_info(atoms.info)
        pairs = {k: v for k, v in kvp.items() if v is not None}
        try:
            if id is None:
                return self._db.write(atoms, hkey=key, status=status, data=payload, **pairs)
            self._db.update(id, atoms=atoms, hkey=key, status=status, data=payload, **pairs)
            return id
        except Exception as exc:
            raise StoreError(f"cannot write to result store {self.url!r}: {exc}") from None

    def get_or_compute(
        self,
        key: str,
        compute: Callable[[Any], StoreEntry],
        *,
        accept: Callable[[Any], bool] | None = None,
    ) -> Lookup:
        """The finished result under ``key``, or ``compute`` it and store it: the one get-or-compute sequence.

        Parameters
        ----------
        key
            Result key (:func:`result_key`).
        compute
            ``compute(previous) -> StoreEntry``. ``previous`` is a finished row under
            ``key`` that ``accept`` rejected (e.g. an unconverged relaxation to continue),
            else None; the new result replaces that row.
        accept
            ``accept(row) -> bool``: whether a finished row is a cache hit (default: any).

        Returns
        -------
        Lookup
            The row of a cache hit, or the id of the row written and the computed entry.
            If another process stored an accepted result while this one computed, that
            row's id is returned and nothing is written twice. The result overwrites the
            row it finishes (the rejected earlier result, else the first checkpoint), so
            row ids stay those a user saw while it ran; other checkpoint rows
            (``status="running"``) of the key are removed.
        """
        ok = accept or (lambda row: True)
        row = self.find(key)
        if row is not None and ok(row):
            return Lookup(row_id=row.id, row=row)
        with self.key_lock(key):
            return self._compute_and_write(key, compute, ok, row)

    def _compute_and_write(self, key: str, compute: Callable[[Any], StoreEntry], ok: Callable[[Any], bool],
                           row) -> Lookup:
        """:meth:`get_or_compute` under the key's lock: look again (another holder may have finished it), compute, write."""
        again = self.find(key)
        if again is not None and ok(again):
            return Lookup(row_id=again.id, row=again)
        row = again if again is not None else row
        entry = compute(row)
        with self.lock():
            existing = self.find(key)
            running = [r.id for r in self.rows(hkey=key, status="running")]
            if existing is not None and (row is None or existing.id != row.id) and ok(existing):
                row_id = existing.id  # another process finished it first
            else:  # the result takes the place of the row it finishes: the earlier result, else its checkpoint
                target = row.id if row is not None else (running[0] if running else None)
                row_id = self.write(entry.atoms, key=key, status="done", kvp=entry.kvp, data=entry.data, id=target)
            self.delete([i for i in running if i != row_id])
        return Lookup(row_id=row_id, entry=entry)

    def delete(self, ids: list[int]) -> None:
        if ids:
            self._db.delete(list(ids))

    def run_dir(self, key: str) -> Path:
        """Per-result working directory (trajectory, engine files)."""
        d = self.workdir / key[:16]
        d.mkdir(parents=True, exist_ok=True)
        return d


@contextlib.contextmanager
def _flocked(path: Path, *, waiting: str | None = None) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing); the kernel releases it if
    the holder dies. ``waiting`` is logged when another holder makes this one wait."""
    import fcntl

    with open(path, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if waiting:
                log.info(waiting)
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
