"""Label matching shared by routes, silences and inhibitions: exact values and regexes.

Regular expressions are anchored, as in Alertmanager: `drift` does not match `feature_drift`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache


@lru_cache(maxsize=512)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(f"(?:{pattern})\\Z")


def matches(
    labels: Mapping[str, str], exact: Mapping[str, str], regex: Mapping[str, str] | None = None
) -> bool:
    if any(labels.get(key, "") != value for key, value in exact.items()):
        return False
    return all(_compiled(p).match(labels.get(key, "")) for key, p in (regex or {}).items())
