"""Checks of configuration options shared by every sub-package of ``components``.

The channels (credentials.yml) and the NLU components (config.yml) each take
counts and sizes that have to be whole numbers of at least 1, and each used to
spell that check, and its message, its own way (one let ``true`` through as 1,
YAML's boolean being a Python int). It lives here, at the top of the package
and without Rasa imports, so that ``channels`` and ``nlu`` (and ``generator``,
which must not import Rasa) can share it without importing each other.
"""
from __future__ import annotations

from typing import Any, Type


def positive_int(name: str, value: Any, where: str,
                 error: Type[Exception] = ValueError) -> int:
    """``value``, checked to be an integer >= 1 (a bool is not an integer here).

    Args:
        name: the option's key, as the user writes it (``max_body_bytes``).
        value: the configured value.
        where: the component or file that reads the option (``rest channel``);
            the message starts with it.
        error: the exception class to raise; it is called with the message.

    Returns:
        ``value`` unchanged.

    Raises:
        error (ValueError by default): ``"<where>: <name> has to be an integer
            >= 1, got <value!r>."`` when ``value`` is not an ``int``, is a
            ``bool``, or is below 1.
    """
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise error(f"{where}: {name} has to be an integer >= 1, got {value!r}.")
    return value
