"""JSON-safe copies of values: one sanitiser for the db (records, stored settings),
move provenance in ``atoms.info`` and the benchmarks' JSON files."""

import dataclasses
import json
from pathlib import PurePath

import numpy as np


def public_fields(obj):
    """An object as its public attributes (``vars`` without ``_`` names), else str."""
    if hasattr(obj, "__dict__"):
        return {k: v for k, v in vars(obj).items() if not k.startswith("_")}
    return str(obj)


def json_default(obj, objects=str):
    """``json.dumps(default=...)``: numpy scalars and arrays to Python, paths to str,
    dataclasses to dicts, any other object through ``objects`` (str by default)."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, PurePath):
        return str(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    return objects(obj)


def plain(value, objects=str):
    """A JSON-safe copy of ``value`` (dict keys become strings, tuples lists); other
    objects go through ``objects`` (``str``, or :func:`public_fields`)."""
    return json.loads(json.dumps(value, default=lambda obj: json_default(obj, objects)))
