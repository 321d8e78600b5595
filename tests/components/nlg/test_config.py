"""NLGConfig: the defaults, and every bad `nlg` option rejected with a message naming it."""
import dataclasses
from pathlib import Path

import pytest
from rasa.shared.exceptions import RasaException

from components.generator.config import GenerationConfig
from components.generator.guardrails import DEFAULT_BLOCKLIST, GuardrailConfig
from components.nlg.config import NLGConfig, NLGConfigError, read_nlg_config

ROOT = Path(__file__).resolve().parents[3]


def test_defaults():
    config = NLGConfig()
    assert (config.max_turns, config.timeout_grace_s, config.rating_buttons,
            config.max_batch_size, config.torch_threads, config.action_failure_response) == \
        (6, 1.0, True, 8, 1, "utter_service_unavailable")
    assert config.decoding == GenerationConfig() and config.guardrails == GuardrailConfig()
    assert NLGConfig.from_dict(None) == NLGConfig.from_dict({}) == config


def test_from_dict_builds_the_nested_configs():
    config = NLGConfig.from_dict({
        "max_turns": 4, "timeout_grace_s": 2, "rating_buttons": False, "max_batch_size": 1,
        "torch_threads": None, "action_failure_response": "utter_try_later",
        "decoding": {"do_sample": True, "temperature": 0.5, "max_new_tokens": 20},
        "guardrails": {"max_chars": 200, "extra_blocklist": ["refund"]},
    })
    assert (config.max_turns, config.rating_buttons, config.max_batch_size,
            config.torch_threads, config.action_failure_response) == \
        (4, False, 1, None, "utter_try_later")
    assert config.timeout_grace_s == 2.0 and isinstance(config.timeout_grace_s, float)
    assert config.decoding == GenerationConfig(do_sample=True, temperature=0.5,
                                               max_new_tokens=20)
    assert config.guardrails.max_chars == 200
    assert config.guardrails.blocklist == DEFAULT_BLOCKLIST + ("refund",)


def test_the_config_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        NLGConfig().max_turns = 2  # type: ignore[misc]


@pytest.mark.parametrize("key, value, words", [
    ("max_turns", 0, "integer >= 1"),
    ("max_turns", "6", "integer >= 1"),
    ("max_turns", True, "integer >= 1"),
    ("timeout_grace_s", -0.5, "seconds >= 0"),
    ("timeout_grace_s", "1s", "seconds >= 0"),
    ("timeout_grace_s", float("inf"), "seconds >= 0"),
    ("rating_buttons", "yes", "true or false"),
    ("rating_buttons", 1, "true or false"),
    ("max_batch_size", 0, "integer >= 1"),
    ("max_batch_size", "8", "integer >= 1"),
    ("max_batch_size", False, "integer >= 1"),
    ("torch_threads", 0, "integer >= 1 or null"),
    ("torch_threads", 1.5, "integer >= 1 or null"),
    ("action_failure_response", "", "name of a domain response"),
    ("action_failure_response", 3, "name of a domain response"),
    ("decoding", ["greedy"], "mapping of GenerationConfig options"),
    ("guardrails", "strict", "mapping of GuardrailConfig options"),
])
def test_a_bad_value_is_rejected_naming_the_key_and_the_value(key, value, words):
    with pytest.raises(NLGConfigError) as error:
        NLGConfig.from_dict({key: value})
    message = str(error.value)
    assert message.startswith("Invalid `nlg` option in endpoints.yml: ")
    assert key in message and repr(value) in message and words in message


@pytest.mark.parametrize("section, options, words", [
    ("decoding", {"temperature": 0}, "temperature has to be a strictly positive float"),
    ("decoding", {"max_new_tokens": 0}, "max_new_tokens has to be >= 1"),
    ("decoding", {"temprature": 0.5}, "Unknown GenerationConfig option(s) ['temprature']"),
    ("guardrails", {"max_chars": 5}, "max_chars has to be >= 20"),
    ("guardrails", {"blocklist": ["("]}, "is not a valid regex"),
    ("guardrails", {"max_char": 300}, "Unknown guardrail option(s) ['max_char']"),
    ("answers", {"min_similarity": 2}, "min_similarity is a cosine similarity in [-1, 1]"),
    ("answers", {"top_k": 0}, "top_k has to be an integer >= 1"),
    ("answers", {"min_similarty": 0.5}, "unknown answers option(s) ['min_similarty']"),
])
def test_a_bad_nested_value_names_its_section(section, options, words):
    with pytest.raises(NLGConfigError) as error:
        NLGConfig.from_dict({section: options})
    assert f"Invalid `nlg` option in endpoints.yml: {section}: " in str(error.value)
    assert words in str(error.value)


def test_an_unknown_key_is_named_with_the_valid_ones():
    with pytest.raises(NLGConfigError) as error:
        NLGConfig.from_dict({"max_turn": 6, "rating_buttons": True})
    message = str(error.value)
    assert "Unknown option(s) ['max_turn'] in the `nlg` section of endpoints.yml" in message
    assert "valid options are ['action_failure_response', 'answers', 'decoding', 'guardrails'" in message
    assert "'response'" not in message


def test_the_removed_response_key_says_where_the_name_lives_now():
    with pytest.raises(NLGConfigError) as error:
        NLGConfig.from_dict({"response": "utter_gpt_reply", "max_turns": 6})
    message = str(error.value)
    assert "`response` in endpoints.yml is no longer read" in message
    assert "GPTPolicy's `response` option in config.yml" in message
    assert "Delete `response` from the `nlg` section of endpoints.yml" in message


def test_the_constructor_validates_too():
    with pytest.raises(NLGConfigError, match="max_batch_size"):
        NLGConfig(max_batch_size=0)
    with pytest.raises(NLGConfigError, match="decoding has to be a GenerationConfig"):
        NLGConfig(decoding={"max_new_tokens": 8})  # type: ignore[arg-type]


def test_the_error_is_a_rasa_exception():
    assert issubclass(NLGConfigError, RasaException)


# --------------------------------------------------------------------------- read_nlg_config

def write(tmp_path, text):
    path = tmp_path / "endpoints.yml"
    path.write_text(text, encoding="utf-8")
    return path


def test_reads_the_nlg_section_without_rasas_own_keys(tmp_path):
    path = write(tmp_path, """
tracker_store:
  type: SQL
  password: ${DB_PASSWORD}
nlg:
  type: components.nlg.generative_nlg.GenerativeNLG
  max_turns: 3
  decoding: {max_new_tokens: 12, max_time_s: 1.5}
""")
    config = read_nlg_config(path)
    assert config.max_turns == 3
    assert config.decoding == GenerationConfig(max_new_tokens=12, max_time_s=1.5)
    assert config.guardrails == GuardrailConfig()


@pytest.mark.parametrize("text", ["action_endpoint: {url: http://localhost:5055/webhook}\n",
                                  "nlg:\n", ""])
def test_a_file_without_options_gives_the_defaults(tmp_path, text):
    assert read_nlg_config(write(tmp_path, text)) == NLGConfig()


def test_an_old_file_with_nlg_response_fails(tmp_path):
    path = write(tmp_path, "nlg:\n  type: components.nlg.generative_nlg.GenerativeNLG\n"
                           "  response: utter_gpt_reply\n")
    with pytest.raises(NLGConfigError, match="no longer read"):
        read_nlg_config(path)


def test_missing_and_broken_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="No endpoints file at"):
        read_nlg_config(tmp_path / "nope.yml")
    with pytest.raises(NLGConfigError, match="not valid YAML"):
        read_nlg_config(write(tmp_path, "nlg: [unclosed\n"))
    with pytest.raises(NLGConfigError, match="YAML mapping"):
        read_nlg_config(write(tmp_path, "- a list\n"))


def test_the_projects_endpoint_files_are_valid_and_decode_alike():
    local = read_nlg_config(ROOT / "endpoints.yml")
    production = read_nlg_config(ROOT / "deploy" / "endpoints.production.yml")
    assert local.decoding == production.decoding
    assert local.guardrails == production.guardrails
    # The same answers everywhere; only where the help center is published differs
    # (the demo's page server on localhost vs the store's site).
    assert dataclasses.replace(local.answers, help_center_url=production.answers.help_center_url) \
        == production.answers
    assert local.answers.help_center_url != production.answers.help_center_url


def test_the_server_section_takes_its_values_from_the_environment(tmp_path, monkeypatch):
    path = write(tmp_path, """
nlg:
  type: components.nlg.generative_nlg.GenerativeNLG
  server: {url: "${LLM_URL}", model: "${LLM_MODEL}", api_key: "${LLM_KEY}"}
""")
    monkeypatch.setenv("LLM_URL", "http://127.0.0.1:11434/v1")
    monkeypatch.setenv("LLM_MODEL", "qwen2.5:7b-instruct")
    monkeypatch.setenv("LLM_KEY", "sk-1")
    server = read_nlg_config(path).server
    assert (server.url, server.model, server.api_key) == (
        "http://127.0.0.1:11434/v1", "qwen2.5:7b-instruct", "sk-1")
    assert read_nlg_config(path).generates_answers()  # answers.generate null: with a server
    monkeypatch.delenv("LLM_KEY")
    with pytest.raises(NLGConfigError, match=r"\['LLM_KEY'\], which are not set"):
        read_nlg_config(path)


@pytest.mark.parametrize("generate,reads_passages,writes", [
    (None, False, False),  # the built-in model: the extractive answer
    (None, True, True),  # a model trained with answer_from_passages writes them
    (False, True, False),
    (True, False, True),
])
def test_who_writes_the_help_center_answers(generate, reads_passages, writes):
    config = NLGConfig.from_dict({"answers": {"generate": generate}})
    assert config.generates_answers(reads_passages) is writes


def test_a_negative_copy_bias_is_refused_naming_the_setting():
    with pytest.raises(NLGConfigError, match="copy_bias"):
        NLGConfig.from_dict({"decoding": {"copy_bias": -1}})
