"""Old dotted paths of the components, still importable, with a warning that names the new one.

Until 2026-12 ``components/`` was flat (``components.gpt_policy.GPTPolicy``,
``components.nlg.GenerativeNLG``, ...). A user's own config.yml, endpoints.yml,
credentials.yml or a model archive trained then may still carry those paths,
and Rasa resolves them with ``importlib.import_module``. ``LegacyPathFinder``
answers those imports with the module at its new place (the same module object,
so ``isinstance`` checks and Rasa's component registry see one class) and warns
once per path with the path to write instead::

    components.gpt_policy moved to components.policies.gpt_policy; update the dotted
    path in config.yml, endpoints.yml or credentials.yml.

``components/__init__.py`` puts the finder first on ``sys.meta_path`` (cheap: no
module is loaded until an old path is imported).
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from types import ModuleType
from typing import Optional, Sequence

# old module -> new module; the one table of moves (README, "Where things live").
MOVED = {
    "components.rest_channel": "components.channels.rest_channel",
    "components.socketio_channel": "components.channels.socketio_channel",
    "components.slack_channel": "components.channels.slack_channel",
    "components.text_normalizer": "components.nlu.text_normalizer",
    "components.sentence_featurizer": "components.nlu.sentence_featurizer",
    "components.minilm": "components.nlu.minilm",
    "components.nearest_example_fallback": "components.nlu.nearest_example_fallback",
    "components.safety_classifier": "components.nlu.safety_classifier",
    "components.gpt_policy": "components.policies.gpt_policy",
    "components.guardrails": "components.generator.guardrails",
    "components.action_fallback": "components.rasa_patches.action_fallback",
    "components.tracker_store": "components.stores.tracker_store",
}
# ``components.nlg`` was a module and is now a package; its ``__getattr__`` answers
# the old ``components.nlg.GenerativeNLG`` the same way.


def moved_message(old: str, new: str) -> str:
    """The warning for one old path: where it went and what to edit."""
    return (f"{old} moved to {new}; update the dotted path in config.yml, endpoints.yml "
            f"or credentials.yml.")


class _AliasLoader(importlib.abc.Loader):
    """Loads an old path as the module already living at its new path."""

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        new = MOVED[spec.name]
        warnings.warn(moved_message(spec.name, new), FutureWarning, stacklevel=2)
        module = importlib.import_module(new)
        self._spec = module.__spec__  # importlib overwrites it with the alias's spec next
        return module

    def exec_module(self, module: ModuleType) -> None:
        """Runs nothing (the new module already ran); gives it back its own ``__spec__``."""
        module.__spec__ = self._spec


class LegacyPathFinder(importlib.abc.MetaPathFinder):
    """Finds the modules of ``MOVED`` under their old names (see module docstring)."""

    def find_spec(self, fullname: str, path: Optional[Sequence[str]] = None,
                  target: Optional[ModuleType] = None) -> Optional[importlib.machinery.ModuleSpec]:
        if fullname not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader())


def install() -> None:
    """Puts ``LegacyPathFinder`` first on ``sys.meta_path`` (idempotent)."""
    if not any(isinstance(f, LegacyPathFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, LegacyPathFinder())
