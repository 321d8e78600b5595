"""bench/nlu_cost.py: which pipeline each baseline name stands for."""
from __future__ import annotations

import subprocess

import pytest
import yaml

from bench import nlu_cost


def names(spec: str) -> list:
    return [c["name"] for c in yaml.safe_load(nlu_cost.config_text(spec))["pipeline"]]


def test_default_is_the_pipeline_rasa_init_gets():
    pipeline = names(nlu_cost.DEFAULT)
    assert pipeline[0] == "WhitespaceTokenizer"
    assert {"CountVectorsFeaturizer", "DIETClassifier", "FallbackClassifier"} <= set(pipeline)


def test_config_yml_is_the_shipped_pipeline():
    assert ("components.nlu.sentence_intent_classifier.SentenceIntentClassifier"
            in names(nlu_cost.SHIPPED))


def test_an_unknown_git_spec_fails_loudly():
    with pytest.raises(subprocess.CalledProcessError):
        nlu_cost.config_text("0000000:config.yml")
