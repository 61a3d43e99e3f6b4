"""The local object store through its interface (mlkernel.artifacts.base.ObjectStore)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from mlkernel.artifacts import LocalObjectStore, ObjectStore
from mlkernel.errors import IntegrityError


def _store(tmp_path: Path) -> ObjectStore:
    return LocalObjectStore(tmp_path / "objects")  # typed as the interface: mypy checks it fits


def test_put_read_size_uri_and_delete(tmp_path: Path) -> None:
    store = _store(tmp_path)
    digest, size = store.put_bytes(b"payload")
    assert (digest, size) == store.put_bytes(b"payload")  # stored once
    assert store.exists(digest) and store.size(digest) == size == 7
    assert store.read_bytes(digest, verify=True) == b"payload"
    assert store.uri(digest) == f"objects/{digest[:2]}/{digest[2:]}"
    assert list(store.iter_digests()) == [(digest, 7)] and store.usage() == (1, 7)
    assert store.delete(digest) and not store.exists(digest) and not store.delete(digest)
    with pytest.raises(IntegrityError, match="missing"):
        store.size(digest)


def test_put_file_and_adopt_give_the_same_object(tmp_path: Path) -> None:
    store = _store(tmp_path)
    source = tmp_path / "a.bin"
    source.write_bytes(b"x" * 3_000_000)  # more than one chunk
    digest, size = store.put_file(source)
    staged = store.staging / "data-1-staged"
    staged.write_bytes(source.read_bytes())
    store.adopt(staged, digest)  # already there: the staged file goes, nothing is copied
    assert not staged.exists() and list(store.iter_digests()) == [(digest, size)]


def test_local_path_for_reading_is_the_read_only_object_and_can_verify(tmp_path: Path) -> None:
    store = _store(tmp_path)
    digest, _ = store.put_bytes(b"payload")
    path = store.local_path_for_reading(digest)
    assert path.read_bytes() == b"payload"
    assert not path.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    os.chmod(path, stat.S_IWUSR | stat.S_IRUSR)
    path.write_bytes(b"altered")
    assert store.local_path_for_reading(digest) == path  # no check unless asked
    with pytest.raises(IntegrityError, match="altered"):
        store.local_path_for_reading(digest, verify=True)
