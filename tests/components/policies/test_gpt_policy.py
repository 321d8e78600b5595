"""GPTPolicy: train -> load -> predict with Rasa's LocalModelStorage."""
import logging
import shutil

import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.core.constants import ACTION_LISTEN_NAME
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, ActiveLoop, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from components.generator import registry
from components.policies.gpt_policy import GPTPolicy, GPTPolicyConfigError
from tests.conftest import TINY_TRAIN

DOMAIN = Domain.from_yaml("""
version: "3.1"
intents: [greet, chitchat, out_of_scope, order_status]
forms:
  order_lookup_form:
    required_slots: [order_id]
slots:
  order_id:
    type: text
    mappings: [{type: from_text}]
responses:
  utter_greet: [{text: "Hi!"}]
  utter_gpt_reply: [{text: "Sorry, I can't answer that."}]
  utter_ask_order_id: [{text: "Which order?"}]
""")


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    """Each test gets its own generator cache (generator_cache_dir())."""
    monkeypatch.setenv("RASA_CACHE_DIRECTORY", str(tmp_path / "rasa-cache"))
    return tmp_path / "rasa-cache" / "gpt_policy"


@pytest.fixture
def storage(tmp_path):
    (tmp_path / "storage").mkdir()
    return LocalModelStorage.create(tmp_path / "storage")


@pytest.fixture
def context():
    return ExecutionContext(GraphSchema({}), "test-model")


@pytest.fixture
def config(tiny_corpus):
    return {**GPTPolicy.get_default_config(), "corpus": str(tiny_corpus), "train": TINY_TRAIN}


@pytest.fixture
def trained(config, storage, context):
    resource = Resource("gpt_policy")
    policy = GPTPolicy.create(config, storage, resource, context)
    policy.train([], DOMAIN)
    return resource


def user_turn(intent: str, confidence: float = 0.9, loop=None):
    events = [ActionExecuted(ACTION_LISTEN_NAME)]
    if loop:
        events.insert(0, ActiveLoop(loop))
    events.append(UserUttered("some text", intent={"name": intent, "confidence": confidence}))
    return DialogueStateTracker.from_events("test-user", events)


def predicted(prediction, domain=DOMAIN):
    best = max(range(len(prediction.probabilities)), key=prediction.probabilities.__getitem__)
    return domain.action_names_or_texts[best], prediction.probabilities[best]


def test_round_trip_registers_the_generator(config, storage, context, trained):
    registry.clear()
    loaded = GPTPolicy.load(config, storage, trained, context)
    assert loaded.generator is not None
    assert registry.active() is loaded.generator
    assert registry.response() == config["response"]
    assert loaded.generator.model_version.startswith("kestrel-gpt-")


@pytest.mark.parametrize("intent", ["chitchat", "out_of_scope", "nlu_fallback"])
def test_open_intents_get_the_generated_response(config, storage, context, trained, intent):
    policy = GPTPolicy.load(config, storage, trained, context)
    action, score = predicted(policy.predict_action_probabilities(user_turn(intent), DOMAIN))
    assert (action, score) == ("utter_gpt_reply", 1.0)


def test_scripted_intents_get_only_the_fallback_confidence(config, storage, context, trained):
    policy = GPTPolicy.load(config, storage, trained, context)
    action, score = predicted(policy.predict_action_probabilities(user_turn("greet"), DOMAIN))
    assert action == "utter_gpt_reply"
    assert score == config["core_fallback_threshold"]


def test_after_the_reply_it_listens_or_returns_to_the_form(config, storage, context, trained):
    policy = GPTPolicy.load(config, storage, trained, context)
    tracker = user_turn("chitchat")
    tracker.update(ActionExecuted("utter_gpt_reply"))
    assert predicted(policy.predict_action_probabilities(tracker, DOMAIN)) == (
        ACTION_LISTEN_NAME, 1.0)
    in_form = user_turn("chitchat", loop="order_lookup_form")
    in_form.update(ActionExecuted("utter_gpt_reply"))
    assert predicted(policy.predict_action_probabilities(in_form, DOMAIN)) == (
        "order_lookup_form", 1.0)


def test_each_decision_is_logged_with_its_reason(config, storage, context, trained, caplog):
    policy = GPTPolicy.load(config, storage, trained, context)
    logger = "components.policies.gpt_policy"

    def logged(tracker):
        caplog.clear()
        with caplog.at_level(logging.DEBUG, logger=logger):
            policy.predict_action_probabilities(tracker, DOMAIN)
        return [r.getMessage() for r in caplog.records if r.name == logger]

    assert logged(user_turn("chitchat")) == [
        "GPTPolicy predicted utter_gpt_reply with confidence 1.0: intent 'chitchat' is "
        "open-ended."]
    assert logged(user_turn("greet", confidence=0.93)) == [
        "GPTPolicy predicted utter_gpt_reply with confidence 0.4 (core_fallback_threshold): "
        "intent 'greet' (confidence 0.93) is scripted; a scripted policy wins if more "
        "confident."]
    in_form = user_turn("chitchat", loop="order_lookup_form")
    in_form.update(ActionExecuted("utter_gpt_reply"))
    assert logged(in_form) == [
        "GPTPolicy predicted order_lookup_form with confidence 1.0: after utter_gpt_reply: "
        "back to the active form order_lookup_form."]
    after = user_turn("chitchat")
    after.update(ActionExecuted("utter_gpt_reply"))
    assert "no form is active, so it listens" in logged(after)[0]
    scripted = user_turn("greet")
    scripted.update(ActionExecuted("utter_greet"))
    assert "predicted nothing" in logged(scripted)[0]


def test_no_prediction_in_the_middle_of_scripted_actions(config, storage, context, trained):
    policy = GPTPolicy.load(config, storage, trained, context)
    tracker = user_turn("greet")
    tracker.update(ActionExecuted("utter_greet"))
    assert max(policy.predict_action_probabilities(tracker, DOMAIN).probabilities) == 0.0


def test_domain_without_the_response_is_rejected(config, storage, context):
    policy = GPTPolicy.create(config, storage, Resource("p"), context)
    domain = Domain.from_yaml('version: "3.1"\nintents: [greet]\n')
    with pytest.raises(GPTPolicyConfigError, match="utter_gpt_reply"):
        policy.train([], domain)


def test_missing_corpus_is_a_clear_training_error(config, storage, context, tmp_path):
    config = {**config, "corpus": str(tmp_path / "nowhere")}
    policy = GPTPolicy.create(config, storage, Resource("p"), context)
    with pytest.raises(GPTPolicyConfigError, match="nowhere"):
        policy.train([], DOMAIN)


def test_invalid_train_options_are_a_clear_training_error(config, storage, context):
    config = {**config, "train": {"no_such_option": 1}}
    policy = GPTPolicy.create(config, storage, Resource("p"), context)
    with pytest.raises(GPTPolicyConfigError, match="GPTPolicy `train` option is invalid"):
        policy.train([], DOMAIN)


def test_base_model_without_finetuning_is_copied(config, storage, context, tiny_checkpoint):
    config = {**config, "base_model": str(tiny_checkpoint), "finetune": False}
    resource = Resource("gpt_base")
    GPTPolicy.create(config, storage, resource, context).train([], DOMAIN)
    loaded = GPTPolicy.load(config, storage, resource, context)
    assert loaded.generator.model_id == tiny_checkpoint.name


def test_load_without_a_trained_resource_degrades(config, storage, context, caplog):
    with caplog.at_level(logging.WARNING):
        policy = GPTPolicy.load(config, storage, Resource("never-trained"), context)
    assert policy.generator is None and registry.active() is None
    assert "canned" in caplog.text
    action, _ = predicted(policy.predict_action_probabilities(user_turn("chitchat"), DOMAIN))
    assert action == "utter_gpt_reply"


def test_fingerprint_follows_the_corpus(config, tiny_corpus):
    before = GPTPolicy.fingerprint_addon(config)
    assert GPTPolicy.fingerprint_addon(config) == before
    tiny_corpus.write_text(tiny_corpus.read_text().replace("Canada", "Canada and the US"))
    assert GPTPolicy.fingerprint_addon(config) != before


def test_bad_threshold_is_rejected(config, storage, context):
    with pytest.raises(GPTPolicyConfigError, match="core_fallback_threshold"):
        GPTPolicy.create({**config, "core_fallback_threshold": 2}, storage, Resource("p"), context)


def test_unchanged_corpus_and_config_reuse_the_cached_generator(
        config, storage, context, trained, cache_dir, monkeypatch, tiny_corpus):
    from components.generator import train as trainer

    assert len(list(cache_dir.iterdir())) == 1

    def no_training(*args, **kwargs):
        raise AssertionError("the generator was trained again")

    monkeypatch.setattr(trainer, "train", no_training)
    again = GPTPolicy.create(config, storage, Resource("gpt_again"), context)
    again.train([], DOMAIN)  # other stories would give other trackers: no retraining
    assert again.generator.model_version == GPTPolicy.load(
        config, storage, trained, context).generator.model_version

    tiny_corpus.write_text(tiny_corpus.read_text() + "\n# a new comment\n")
    with pytest.raises(AssertionError, match="trained again"):
        GPTPolicy.create(config, storage, Resource("gpt_new"), context).train([], DOMAIN)


def test_promoted_generator_is_packed_as_is(config, storage, context, tiny_checkpoint, tmp_path):
    """After `python -m components.feedback promote`, `rasa train` ships that version."""
    from components.feedback.versions import GeneratorVersions
    from components.generator.generator import write_meta

    version_dir = tmp_path / "tiny-promoted"
    shutil.copytree(tiny_checkpoint, version_dir)
    write_meta(version_dir, {"model_id": "tiny", "version": "tiny-promoted"})
    versions = GeneratorVersions(tmp_path / "generators")
    config = {**config, "promoted": str(versions.root / "current")}
    unpromoted = GPTPolicy.fingerprint_addon(config)
    versions.promote(version_dir)
    assert GPTPolicy.fingerprint_addon(config) != unpromoted  # Rasa retrains the policy

    policy = GPTPolicy.create(config, storage, Resource("gpt_policy"), context)
    policy.train([], DOMAIN)
    assert policy.generator.model_version == "tiny-promoted"


ARTICLE = """---
title: {title}
slug: {slug}
tags: [delivery]
last_reviewed: 2026-12-01
---
{body}
"""


@pytest.fixture
def help_center(tmp_path):
    folder = tmp_path / "knowledge"
    folder.mkdir()
    for slug, title, body in [
        ("shipping-costs", "Shipping costs",
         "Standard shipping is free over $50.\n\n## Express\nExpress costs $12.95."),
        ("wet-box", "A wet or damaged box", "Photograph the box before you open it."),
    ]:
        (folder / f"{slug}.md").write_text(ARTICLE.format(slug=slug, title=title, body=body))
    return folder


def test_training_indexes_the_help_center_into_the_archive(config, storage, context,
                                                           help_center):
    from components.generator.retrieval import Retriever, minilm_encoder
    from components.policies.gpt_policy import KNOWLEDGE_DIR

    resource = Resource("gpt_policy")
    GPTPolicy.create({**config, "knowledge": str(help_center)}, storage, resource,
                     context).train([], DOMAIN)
    with storage.read_from(resource) as path:
        index = Retriever.load(path / KNOWLEDGE_DIR, minilm_encoder())
        assert [p.id for p in index.passages] == ["shipping-costs#0", "shipping-costs#1",
                                                  "wet-box#0"]
        assert index.search("how much is express delivery", k=1)[0].passage.id == \
            "shipping-costs#1"


def test_training_indexes_the_known_questions_and_refuses_an_unknown_section(
        config, storage, context, help_center, tmp_path):
    from components.generator.retrieval import Retriever, minilm_encoder
    from components.policies.gpt_policy import KNOWLEDGE_DIR

    questions = tmp_path / "grounded.yml"
    questions.write_text('articles:\n  - slug: shipping-costs\n    pairs:\n'
                         '      - question: "what does express cost"\n        section: "Express"\n')
    resource = Resource("gpt_policy")
    with_questions = {**config, "knowledge": str(help_center), "questions": str(questions)}
    GPTPolicy.create(with_questions, storage, resource, context).train([], DOMAIN)
    with storage.read_from(resource) as path:
        index = Retriever.load(path / KNOWLEDGE_DIR, minilm_encoder())
        question = "how much does express cost"
        assert index.search(question, k=1)[0].passage.slug == "shipping-costs"
        assert index.section_matches(index.query_vector(question), "shipping-costs") == {
            "Express": pytest.approx(index.question_matches(index.query_vector(question))[
                "shipping-costs"])}
    questions.write_text(questions.read_text().replace('"Express"', '"Overnight"'))
    with pytest.raises(GPTPolicyConfigError, match=r"help center.*'Overnight'"):
        GPTPolicy.create(with_questions, storage, Resource("p"), context).train([], DOMAIN)


def test_a_broken_article_fails_training_naming_the_file(config, storage, context,
                                                         help_center):
    (help_center / "wet-box.md").write_text("---\ntitle: [unclosed\n---\nText.")
    policy = GPTPolicy.create({**config, "knowledge": str(help_center)}, storage,
                              Resource("p"), context)
    with pytest.raises(GPTPolicyConfigError, match=r"help center.*wet-box\.md"):
        policy.train([], DOMAIN)


def test_an_edited_article_changes_the_fingerprint_but_not_the_generator_cache(
        config, help_center):
    from components.generator import build

    with_articles = {**config, "knowledge": str(help_center)}
    before, key = GPTPolicy.fingerprint_addon(with_articles), build.cache_key(with_articles)
    (help_center / "wet-box.md").write_text(
        ARTICLE.format(slug="wet-box", title="Wet box", body="Keep the box and call us."))
    assert GPTPolicy.fingerprint_addon(with_articles) != before
    assert build.cache_key(with_articles) == key  # the generator is reused, not retrained


@pytest.fixture
def written_replies(tmp_path):
    path = tmp_path / "no_answer.yml"
    path.write_text('no_answer:\n  - question: "tell me a joke"\n'
                    '    answer: "Jokes are not my strong suit, sorry!"\n')
    return path


def test_training_indexes_the_written_replies_and_load_registers_them(
        config, storage, context, written_replies):
    from components.policies.gpt_policy import REPLIES_DIR

    resource = Resource("gpt_policy")
    with_replies = {**config, "replies": str(written_replies)}
    GPTPolicy.create(with_replies, storage, resource, context).train([], DOMAIN)
    with storage.read_from(resource) as path:
        assert (path / REPLIES_DIR / "replies.json").is_file()
    GPTPolicy.load(with_replies, storage, resource, context)
    match = registry.replies().nearest("tell me a joke please", 0.6)
    assert match.reply.answer == "Jokes are not my strong suit, sorry!"


def test_a_written_reply_with_a_price_fails_training_naming_the_file(
        config, storage, context, written_replies):
    written_replies.write_text('no_answer:\n  - question: "hi"\n    answer: "Hi! It is $5."\n')
    policy = GPTPolicy.create({**config, "replies": str(written_replies)}, storage,
                              Resource("p"), context)
    with pytest.raises(GPTPolicyConfigError, match=r"written replies.*no_answer\.yml#0.*\$5"):
        policy.train([], DOMAIN)


def test_an_edited_written_reply_changes_the_fingerprint(config, written_replies):
    with_replies = {**config, "replies": str(written_replies)}
    before = GPTPolicy.fingerprint_addon(with_replies)
    written_replies.write_text('no_answer:\n  - question: "hi"\n    answer: "Hello!"\n')
    assert GPTPolicy.fingerprint_addon(with_replies) != before


def test_edited_known_questions_change_the_fingerprint(config, tmp_path):
    path = tmp_path / "grounded.yml"
    path.write_text('articles:\n  - slug: a\n    pairs:\n      - question: "q"\n')
    with_questions = {**config, "questions": str(tmp_path)}
    before = GPTPolicy.fingerprint_addon(with_questions)
    assert before != GPTPolicy.fingerprint_addon(config)
    path.write_text(path.read_text().replace('"q"', '"another q"'))
    assert GPTPolicy.fingerprint_addon(with_questions) != before


def test_retrieval_tuning_stores_an_adapter_that_load_searches_with(
        config, storage, context, help_center, tmp_path):
    from components.generator import tuning
    from components.policies.gpt_policy import KNOWLEDGE_DIR

    questions = tmp_path / "grounded.yml"
    questions.write_text('articles:\n  - slug: shipping-costs\n    pairs:\n'
                         '      - question: "what does express cost"\n        section: "Express"\n'
                         '  - slug: wet-box\n    pairs:\n'
                         '      - question: "the parcel came soaked"\n        section: ""\n')
    tuned = {**config, "knowledge": str(help_center), "questions": str(questions),
             "retrieval_tuning": {"epochs": 1}}
    assert GPTPolicy.fingerprint_addon(tuned) != GPTPolicy.fingerprint_addon(
        {**tuned, "retrieval_tuning": {}})
    resource = Resource("gpt_policy")
    GPTPolicy.create(tuned, storage, resource, context).train([], DOMAIN)
    with storage.read_from(resource) as path:
        assert (path / KNOWLEDGE_DIR / tuning.ADAPTER_DIR / "adapter_config.json").is_file()
    GPTPolicy.load(tuned, storage, resource, context)
    index = registry.retriever()
    assert isinstance(index.encoder._encode, tuning.TunedEncoder)  # not the shared MiniLM
    assert index.search("my parcel came soaked", k=1)[0].passage.slug == "wet-box"


def test_invalid_retrieval_tuning_is_a_clear_error(config, storage, context):
    with pytest.raises(GPTPolicyConfigError, match=r"retrieval_tuning.*epochs"):
        GPTPolicy.create({**config, "retrieval_tuning": {"epochs": -1}}, storage,
                         Resource("p"), context)
