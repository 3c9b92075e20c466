"""64-bit keys that identify a row by its id, for the store's memory of rows already counted.

Ids are compared as text, as categories are, so 7, 7.0 and '7' read back from different
drivers are one id. A collision of two distinct ids has a probability of about n²/2⁶⁴
(one in 10⁷ for 10⁶ ids within the horizon).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def id_text(values: pd.Series) -> pd.Series:
    """Ids as text; a float that holds an integer is written as that integer. Integer ids
    (the usual key, and never null in a numpy column) are written by numpy in one pass."""
    if isinstance(values.dtype, np.dtype) and values.dtype.kind in "iu":
        text = values.to_numpy().astype(str).astype(object)
        return pd.Series(text, index=values.index, dtype=object)
    return values.astype(object).map(_one)


def _one(value: object) -> str:
    if value is None or value is pd.NA or value is pd.NaT:
        return "\x00null"
    if isinstance(value, float) and value != value:
        return "\x00null"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def text_keys(text: pd.Series) -> np.ndarray:
    """Signed 64-bit hashes of text values (the store's BIGINT)."""
    if text.empty:
        return np.zeros(0, dtype=np.int64)
    hashed = pd.util.hash_array(text.to_numpy(dtype=object))
    return hashed.view(np.int64)


def id_keys(ids: pd.Series) -> np.ndarray:
    return text_keys(id_text(ids))


def raw_time_keys(ids: pd.Series, raw: pd.Series) -> np.ndarray:
    """Keys of rows whose timestamp cannot be used: the id and the raw value together, so a
    row is known again whichever way it is read (incrementally or by the bad-row probe)."""
    times = [_one(value) for value in raw.astype(object)]
    joined = id_text(ids).str.cat(pd.Series(times, index=ids.index, dtype=object), sep="\x1f")
    return text_keys(joined)
