"""Parquet tables written atomically, with provenance in the file's key-value metadata."""

from __future__ import annotations

import json
import os

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .h5io import atomic_path, written_by

METADATA_KEY = b"intraneuron"


def atomic_parquet(frame: pd.DataFrame, path: str | os.PathLike, provenance: dict) -> None:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    meta = dict(table.schema.metadata or {})
    meta[METADATA_KEY] = json.dumps({**provenance, **written_by()}, sort_keys=True,
                                    default=str).encode()
    table = table.replace_schema_metadata(meta)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def read_provenance(path: str | os.PathLike) -> dict:
    meta = pq.read_schema(path).metadata or {}
    return json.loads(meta.get(METADATA_KEY, b"{}"))
