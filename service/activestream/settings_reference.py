"""The settings by name: the reference table (``activestream settings``, docs/configuration.md) and a
warning for each ``ACTIVESTREAM_*`` variable that sets nothing."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Final

from activestream.settings import ENV_PREFIX, Settings, env_var

__all__ = ["OTHER_VARIABLES", "settings_table_markdown", "unknown_variables"]

#: ``ACTIVESTREAM_*`` variables that are not settings: the Electricity CSV of the demo and the benchmarks,
#: the deploy scripts' partition count, the browser test's screenshot switch.
OTHER_VARIABLES: Final = frozenset(
    {"ACTIVESTREAM_ELEC_CSV", "ACTIVESTREAM_PARTITIONS", "ACTIVESTREAM_UPDATE_SCREENSHOTS"}
)


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """One warning per ``ACTIVESTREAM_*`` variable that sets nothing (pydantic-settings ignores them
    silently: a typo would leave the default in force), with the nearest valid name.

    >>> unknown_variables({"ACTIVESTREAM_BUGDET": "0.05", "ACTIVESTREAM_BUDGET": "0.1", "HOME": "/"})
    ['ACTIVESTREAM_BUGDET is not a setting and is ignored; did you mean ACTIVESTREAM_BUDGET?']
    """
    known = {env_var(name) for name in Settings.model_fields} | OTHER_VARIABLES
    warnings = []
    for name in sorted(environ):
        if name.upper().startswith(ENV_PREFIX) and name.upper() not in known:
            nearest = difflib.get_close_matches(name.upper(), sorted(known), n=1, cutoff=0.6)
            hint = f"did you mean {nearest[0]}?" if nearest else "`activestream settings` lists them"
            warnings.append(f"{name} is not a setting and is ignored; {hint}")
    return warnings


def _default_text(value: Any) -> str:
    if value is None:
        return "(unset)"
    if value == "":
        return "(empty)"
    if isinstance(value, StrEnum):
        value = value.value
    return f"`{value}`"


def settings_table_markdown() -> str:
    """Every option as a Markdown table: option, environment variable, default, description.

    >>> print(settings_table_markdown().splitlines()[2])
    | `bootstrap_servers` | `ACTIVESTREAM_BOOTSTRAP_SERVERS` | `localhost:9092` | Kafka bootstrap servers. |
    """
    rows = ["| Option | Environment variable | Default | Description |", "|---|---|---|---|"]
    for name, field in Settings.model_fields.items():
        rows.append(
            f"| `{name}` | `{env_var(name)}` | {_default_text(field.default)} | {field.description} |"
        )
    return "\n".join(rows) + "\n"
