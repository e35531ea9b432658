"""Service configuration from ``ACTIVESTREAM_*`` environment variables.

``load_settings()`` reads and validates everything at start and turns validation errors into one readable
line per bad variable, naming the variable; ``settings_table_markdown()`` renders the reference table.

>>> settings = Settings(budget=0.05, sasl_password="hunter2")
>>> settings.budget, settings.events_topic
(0.05, 'events')
>>> "hunter2" in repr(settings)
False

The options themselves are in :mod:`activestream.settings`, the reference table and the unknown-variable
warnings in :mod:`activestream.settings_reference`; this module reads them and re-exports both, so
``from activestream.config import ...`` works for every name as it did.
"""

from __future__ import annotations

from typing import Any, Final

from pydantic import ValidationError

from activestream.settings import ENV_PREFIX, SaslMechanism, SecurityProtocol, Settings, env_var
from activestream.settings_reference import OTHER_VARIABLES, settings_table_markdown, unknown_variables

__all__ = [
    "ENV_PREFIX",
    "OTHER_VARIABLES",
    "ConfigError",
    "SaslMechanism",
    "SecurityProtocol",
    "Settings",
    "env_var",
    "load_settings",
    "settings_table_markdown",
    "unknown_variables",
]


class ConfigError(ValueError):
    """The configuration is invalid; the message names each bad environment variable."""


#: Fields whose input value must never appear in an error message.
_SECRET_FIELDS: Final = frozenset({"sasl_password", "sasl_username"})


def _error_line(error: Any) -> str:
    loc = error.get("loc") or ()
    message = error["msg"].removeprefix("Value error, ")
    if not loc:  # a cross-field check: its message names the variables already
        return message
    field = str(loc[0])
    line = f"{env_var(field)}: {message}"
    value = error.get("input")
    # Our own checks ("value_error") quote the value already; never echo a secret.
    if (
        error["type"] != "value_error"
        and field not in _SECRET_FIELDS
        and isinstance(value, str | int | float)
    ):
        line += f" (got {str(value)[:80]!r})"
    return line


def load_settings(**overrides: Any) -> Settings:
    """Read the settings from the environment (``overrides`` win), or raise one readable ``ConfigError``.

    >>> load_settings(budget=2.0)
    Traceback (most recent call last):
    ...
    activestream.config.ConfigError: invalid configuration:
      ACTIVESTREAM_BUDGET: Input should be less than or equal to 1 (got '2.0')
    """
    try:
        return Settings(**overrides)
    except ValidationError as error:
        lines = sorted({_error_line(e) for e in error.errors(include_url=False)})
        raise ConfigError("invalid configuration:\n" + "\n".join(f"  {line}" for line in lines)) from None
