"""Stable keys of points: a hash of the study, its results version and the point's parameters."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .. import RESULTS_VERSION


def canonical_json(params: dict[str, Any]) -> str:
    """JSON with sorted keys and no spaces: equal dicts give equal strings."""
    return json.dumps(params, sort_keys=True, separators=(",", ":"), default=_default)


def _default(obj: Any) -> Any:
    if hasattr(obj, "item"):  # numpy / torch scalars
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"point parameter of type {type(obj).__name__} is not JSON-serialisable")


def point_key(study: str, study_version: str, params: dict[str, Any]) -> str:
    """sha256 (first 24 hex digits) of study name, package results version, study version and parameters."""
    blob = canonical_json({"study": study, "results_version": RESULTS_VERSION,
                           "study_version": study_version, "params": params})
    return hashlib.sha256(blob.encode()).hexdigest()[:24]
