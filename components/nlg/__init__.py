"""The generative NLG (``generative_nlg``) and its validated options (``config``).

Until 2026-12 this was the module ``components.nlg``; endpoints.yml files that
still say ``type: components.nlg.GenerativeNLG`` keep working, with a warning
that names the new path (``__getattr__`` below, the same message as
``components.legacy_paths``).
"""
from typing import Any

_OLD = "components.nlg.GenerativeNLG"
_NEW = "components.nlg.generative_nlg.GenerativeNLG"


def __getattr__(name: str) -> Any:
    """The old ``components.nlg.GenerativeNLG``: the class at its new path, with a warning."""
    if name != "GenerativeNLG":
        raise AttributeError(f"module 'components.nlg' has no attribute {name!r}")
    import warnings

    from components.legacy_paths import moved_message
    from components.nlg.generative_nlg import GenerativeNLG

    warnings.warn(moved_message(_OLD, _NEW), FutureWarning, stacklevel=2)
    return GenerativeNLG
