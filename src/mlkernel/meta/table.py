"""The in-memory ML Metadata table: a project's artifacts and aliases, indexed.

Loaded when a project is opened and refreshed incrementally (artifacts are immutable, so
only rows with a larger id are fetched; aliases are reloaded whole) whenever the change
watcher reports that another connection wrote. Resolving a reference is then a few dict
lookups.
"""

from __future__ import annotations

import difflib
import threading
from typing import TYPE_CHECKING

from mlkernel.errors import InvalidNameError, NotFoundError
from mlkernel.meta.records import ArtifactRecord
from mlkernel.refs import Ref, parse_ref

if TYPE_CHECKING:
    from mlkernel.meta.changes import ChangeWatcher
    from mlkernel.meta.store import MetaStore

__all__ = ["MetadataTable"]


class MetadataTable:
    def __init__(self, store: MetaStore, watcher: ChangeWatcher) -> None:
        self._store = store
        self._watcher = watcher  # started before the first load, so no change is missed
        self._lock = threading.Lock()
        self._by_id: dict[int, ArtifactRecord] = {}
        self._versions: dict[tuple[str, str], list[ArtifactRecord]] = {}
        self._kinds: dict[str, list[str]] = {}
        self._aliases: dict[tuple[str, str, str], int] = {}
        self._max_id = 0
        self._closed = False
        self._load()

    # -- loading ---------------------------------------------------------------------

    def _load(self) -> None:
        with self._lock:
            for record in self._store.load_artifacts(self._max_id):
                self._add(record)
            self._aliases = self._store.load_aliases()

    def _add(self, record: ArtifactRecord) -> None:
        if record.id in self._by_id:
            return
        self._by_id[record.id] = record
        if record.id > self._max_id:
            self._max_id = record.id
        key = (record.kind, record.name)
        versions = self._versions.get(key)
        if versions is None:
            self._versions[key] = [record]
            kinds = self._kinds.get(record.name)
            if kinds is None:
                self._kinds[record.name] = [record.kind]
            elif record.kind not in kinds:
                kinds.append(record.kind)
        elif versions[-1].version < record.version:
            versions.append(record)
        else:  # concurrent writers may commit versions out of order
            versions.append(record)
            versions.sort(key=lambda r: r.version)

    def refresh(self) -> None:
        if self._closed:
            from mlkernel.meta.db import closed_error

            raise closed_error()
        if self._watcher.changed():
            self._load()

    def note_artifact(self, record: ArtifactRecord) -> None:
        """Record a write this process made, without waiting for the next refresh."""
        with self._lock:
            self._add(record)

    def note_alias(self, kind: str, name: str, alias: str, version: int | None) -> None:
        with self._lock:
            if version is None:
                self._aliases.pop((kind, name, alias), None)
            else:
                self._aliases[(kind, name, alias)] = version

    def close(self) -> None:
        self._closed = True
        self._watcher.close()

    # -- queries ---------------------------------------------------------------------

    def resolve(self, ref: str | Ref, kind: str | None = None) -> ArtifactRecord:
        """The artifact ``ref`` names; ``kind`` is the default when the ref has none."""
        parsed = parse_ref(ref) if isinstance(ref, str) else ref
        self.refresh()
        want = parsed.kind or kind
        if want is None:
            want = self._only_kind(parsed.name)
        versions = self._versions.get((want, parsed.name))
        if not versions:
            raise self._unknown(want, parsed.name)
        number = parsed.version
        if parsed.alias is not None:
            number = self._aliases.get((want, parsed.name, parsed.alias))
            if number is None:
                known = sorted(a for (k, n, a) in self._aliases if k == want and n == parsed.name)
                have = f"its aliases: {', '.join(known)}" if known else "it has no aliases"
                raise NotFoundError(
                    f"{want} {parsed.name!r} has no alias {parsed.alias!r} ({have}); set it "
                    f"with `mlk alias set {want}:{parsed.name}@VERSION {parsed.alias}`"
                )
        if number is not None:
            for candidate in versions[::-1]:
                if candidate.version == number:
                    return candidate
            raise NotFoundError(
                f"{want} {parsed.name!r} has no version {number} (latest is "
                f"{versions[-1].version}); run `mlk show {want}:{parsed.name}`"
            )
        return versions[-1]

    def _only_kind(self, name: str) -> str:
        kinds = self._kinds.get(name)
        if not kinds:
            raise self._unknown(None, name)
        if len(kinds) > 1:
            options = " or ".join(f"{k}:{name}" for k in sorted(kinds))
            raise InvalidNameError(
                f"{name!r} names more than one kind of artifact; write {options}"
            )
        return kinds[0]

    def _unknown(self, kind: str | None, name: str) -> NotFoundError:
        names = list(self._kinds) if kind is None else [n for (k, n) in self._versions if k == kind]
        close = difflib.get_close_matches(name, names, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        what = f"{kind} named" if kind else "artifact named"
        listing = f"mlk ls {kind}" if kind else "mlk ls"
        return NotFoundError(f"no {what} {name!r}; {hint}run `{listing}` to see what exists")

    def get(self, artifact_id: int) -> ArtifactRecord:
        record = self._by_id.get(artifact_id)
        if record is None:
            self._load()
            record = self._by_id.get(artifact_id)
        if record is None:
            raise NotFoundError(f"no artifact with id {artifact_id}; run `mlk ls`")
        return record

    def versions(self, kind: str, name: str) -> list[ArtifactRecord]:
        self.refresh()
        return list(self._versions.get((kind, name), ()))

    def latest(self, kind: str | None = None) -> list[ArtifactRecord]:
        """The newest version of every (kind, name), optionally of one kind."""
        self.refresh()
        return [v[-1] for (k, _n), v in sorted(self._versions.items()) if kind is None or k == kind]

    def aliases_of(self, kind: str, name: str) -> dict[str, int]:
        self.refresh()
        return {a: v for (k, n, a), v in sorted(self._aliases.items()) if k == kind and n == name}

    def all_aliases(self) -> dict[tuple[str, str, str], int]:
        self.refresh()
        return dict(self._aliases)

    def __len__(self) -> int:
        return len(self._by_id)
