"""The dotted paths in the YAML files name their role; the old flat paths still load."""
from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

import pytest
from rasa.shared.utils.common import class_from_module_path

from components import legacy_paths

ROOT = Path(__file__).resolve().parents[2]
YAML_FILES = ["config.yml", "endpoints.yml", "credentials.yml", "deploy/endpoints.production.yml"]
ROLES = {"channels", "nlu", "policies", "nlg", "stores"}


def yaml_component_paths() -> list:
    """Every ``components.….ClassName`` dotted path written in the project's YAML files."""
    found = set()
    for name in YAML_FILES:
        found.update(re.findall(r"\bcomponents(?:\.[a-z_]+)+\.[A-Z]\w*", (ROOT / name).read_text()))
    return sorted(found)


def test_the_yaml_files_name_components():
    assert len(yaml_component_paths()) >= 9


@pytest.mark.parametrize("path", yaml_component_paths())
def test_each_yaml_path_names_its_role_and_loads_without_a_warning(path, recwarn):
    assert path.split(".")[1] in ROLES, f"{path} is not under one of {sorted(ROLES)}"
    klass = class_from_module_path(path)
    assert klass.__name__ == path.rsplit(".", 1)[1]
    assert not [w for w in recwarn if issubclass(w.category, FutureWarning)]


@pytest.mark.parametrize("old,new", sorted(legacy_paths.MOVED.items()))
def test_an_old_path_is_the_new_module_with_a_warning_naming_it(old, new, monkeypatch):
    monkeypatch.delitem(sys.modules, old, raising=False)  # imported by an earlier test
    with pytest.warns(FutureWarning, match=re.escape(f"{old} moved to {new}")):
        module = importlib.import_module(old)
    assert module is importlib.import_module(new)
    assert module.__name__ == new and module.__spec__.name == new


@pytest.mark.parametrize("old,new", [
    ("components.gpt_policy.GPTPolicy", "components.policies.gpt_policy.GPTPolicy"),
    ("components.nlg.GenerativeNLG", "components.nlg.generative_nlg.GenerativeNLG"),
    ("components.tracker_store.URLSQLTrackerStore",
     "components.stores.tracker_store.URLSQLTrackerStore"),
    ("components.rest_channel.ValidatedRestInput",
     "components.channels.rest_channel.ValidatedRestInput"),
])
def test_rasa_resolves_an_old_class_path_to_the_same_class(old, new, monkeypatch):
    module = old.rsplit(".", 1)[0]
    if module in legacy_paths.MOVED:  # an alias imported by an earlier test warns no more
        monkeypatch.delitem(sys.modules, module, raising=False)
    with pytest.warns(FutureWarning, match="moved to"):
        assert class_from_module_path(old) is class_from_module_path(new)


def test_an_unknown_path_is_still_an_import_error():
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("components.no_such_module")
    with pytest.raises(AttributeError, match="no attribute 'Nothing'"):
        importlib.import_module("components.nlg").Nothing  # noqa: B018 - the access is the test


def test_install_is_idempotent():
    legacy_paths.install()
    legacy_paths.install()
    assert sum(isinstance(f, legacy_paths.LegacyPathFinder) for f in sys.meta_path) == 1
