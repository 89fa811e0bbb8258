"""HDF5 files that carry their own schema, are written atomically and are checked when read.

Every dataset is chunked by neuron columns (a shard reads only its slice) and protected by the
Fletcher-32 checksum filter, so a corrupted chunk is an error on read rather than silent garbage.
A file is written under a temporary name and renamed once complete, and carries `complete=1`.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import h5py
import numpy as np

from .faults import kill_point

FORMAT_VERSION = 1
# Every file the package writes names the package version that wrote it, under this key.
VERSION_KEY = "intraneuron_version"


def written_by() -> dict[str, str]:
    """The writer's version, read when the file is written: a file copied or passed on from an
    input keeps no stale version, and a job always stamps the package it actually ran."""
    from . import __version__

    return {VERSION_KEY: __version__}


class CorruptFileError(RuntimeError):
    """An input file from an earlier run is truncated, corrupted or incomplete."""


class MissingFileError(FileNotFoundError):
    """An input file from an earlier step is not there (deleted or moved since)."""


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary sibling path; rename it to `path` only if the block succeeds.

    The package's one atomic-write helper: the writer creates the temporary file itself, so it
    gets the usual umask-respecting mode (0644), and nothing half-written ever has the final name.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield str(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _chunks(shape: tuple[int, ...]) -> tuple[int, ...] | None:
    if 0 in shape:
        return None
    if len(shape) == 1:
        return (min(shape[0], 65536),)
    return (min(shape[0], 2048), min(shape[1], 64))


def write_dataset(group: h5py.Group, name: str, data: np.ndarray) -> None:
    data = np.asarray(data)
    if data.dtype.kind in "OUS":
        group.create_dataset(name, data=data.astype(object), dtype=h5py.string_dtype())
        return
    group.create_dataset(name, data=data, chunks=_chunks(data.shape),
                         fletcher32=_chunks(data.shape) is not None)


def set_attrs(obj: h5py.HLObject, attrs: dict) -> None:
    for key, value in attrs.items():
        obj.attrs[key] = value if isinstance(value, (int, float, str, np.integer, np.floating)) \
            else json.dumps(value, sort_keys=True, default=str)


@contextmanager
def open_checked(path: str | os.PathLike) -> Iterator[h5py.File]:
    """Open an HDF5 input, turning truncation, corruption and incompleteness into one clear error."""
    if not os.path.exists(path):
        raise MissingFileError(
            f"HDF5 file '{path}' is missing (deleted or moved after the step that wrote it): "
            "rerun snakemake, which plans that step again and recreates it"
        )
    hint = (f"delete '{path}' and rerun snakemake (add --rerun-incomplete if it asks); "
            "the file will be recreated")
    try:
        fh = h5py.File(path, "r")
    except (OSError, ValueError) as exc:
        raise CorruptFileError(f"HDF5 file '{path}' cannot be opened, it is truncated or "
                               f"corrupted ({exc}): {hint}") from exc
    try:
        if int(fh.attrs.get("complete", 0)) != 1:
            raise CorruptFileError(f"HDF5 file '{path}' was not completely written: {hint}")
        yield fh
    except (OSError, ValueError, KeyError) as exc:
        raise CorruptFileError(f"HDF5 file '{path}' is corrupted or has an unexpected layout "
                               f"({exc}): {hint}") from exc
    finally:
        fh.close()


def read_attrs(obj: h5py.HLObject) -> dict:
    out = {}
    for key, value in obj.attrs.items():
        if isinstance(value, bytes):
            value = value.decode()
        if isinstance(value, str) and value[:1] in "[{":
            with contextlib.suppress(json.JSONDecodeError):
                value = json.loads(value)
        out[key] = value.item() if isinstance(value, np.generic) else value
    return out


def write_stats(path: str | os.PathLike, per_layer: dict, attrs: dict) -> None:
    """Extraction output: one group per layer (`L{layer}`), provenance in the file attributes."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as fh:
        set_attrs(fh, {**attrs, "format_version": FORMAT_VERSION, "layers": sorted(per_layer),
                       **written_by()})
        for layer, st in per_layer.items():
            g = fh.create_group(f"L{layer}")
            g.attrs["layer"] = layer
            g.attrs["n_neurons"] = st.sum.shape[1]
            for name in ("token_ids", "count", "sum", "max", "argmax"):
                write_dataset(g, name, getattr(st, name))
            kill_point("h5-write")
        fh.attrs["complete"] = 1


def read_stats(path: str | os.PathLike, layer: int, neurons: slice = slice(None)):
    """One layer's statistics (CompactStats), optionally only a slice of neuron columns."""
    from .running_stats import CompactStats

    with open_checked(path) as fh:
        g = fh.get(f"L{layer}")
        if g is None:
            raise CorruptFileError(f"'{path}' has no statistics for layer {layer} "
                                   f"(it holds {read_attrs(fh).get('layers')}): rerun extraction")
        st = CompactStats(g["token_ids"][:], g["count"][:], g["sum"][:, neurons],
                          g["max"][:, neurons], g["argmax"][:, neurons])
        return st, read_attrs(fh)


def read_token_ids(path: str | os.PathLike, layer: int) -> np.ndarray:
    with open_checked(path) as fh:
        return fh[f"L{layer}/token_ids"][:]


def write_arrays(path: str | os.PathLike, arrays: dict[str, np.ndarray], attrs: dict) -> None:
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as fh:
        set_attrs(fh, {**attrs, "format_version": FORMAT_VERSION, **written_by()})
        for name, data in arrays.items():
            write_dataset(fh, name, data)
        fh.attrs["complete"] = 1


def read_arrays(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict]:
    with open_checked(path) as fh:
        out = {}
        for name, ds in fh.items():
            data = ds[...]
            if h5py.check_string_dtype(ds.dtype) is not None:
                data = np.array([x.decode() if isinstance(x, bytes) else x for x in data.ravel()],
                                dtype=object).reshape(data.shape)
            out[name] = data
        return out, read_attrs(fh)


def read_attrs_only(path: str | os.PathLike) -> dict:
    with open_checked(path) as fh:
        return read_attrs(fh)
