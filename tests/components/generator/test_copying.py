"""The copy bias (components/generator/copying.py): unit checks on logits, then real decoding."""
import pytest
import torch

from components.generator.config import GenerationConfig
from components.generator.copying import CopyBiasLogitsProcessor, CopySource, copy_source
from components.generator.generator import Generator
from components.generator.prompt import Turn, format_passage

VOCAB = 20
PROMPT = [1, 2, 3]  # T = 3 prompt tokens in every row below
END = 9  # a sentence-ending token


def run(sources, replies, **options):
    """Scores (B, VOCAB) after the processor, for rows PROMPT + reply, from zero logits."""
    ids = torch.tensor([PROMPT + reply for reply in replies])
    settings = {"bias": 6.0, "start_bias": 1.0, "max_match": 3, "repeat_ngram": 3, **options}
    processor = CopyBiasLogitsProcessor(sources, len(PROMPT), {END}, **settings)
    return processor(ids, torch.zeros((len(replies), VOCAB)))


SOURCE = CopySource(ids=(4, 5, 6, END, 7, 8, 5, 10), starts=frozenset({4, 7}))


def test_the_token_that_continues_the_longest_matched_span_gets_the_bias():
    scores = run([SOURCE], [[4, 5]])[0]  # "4 5" is in the source, followed by 6
    assert scores[6] == pytest.approx(6.0 * 2 / 3)  # a 2-token match: two thirds of it
    assert scores[10] == 0  # follows 5 only after "8 5", which the reply does not end with
    assert scores.nonzero().flatten().tolist() == [6]


def test_a_single_token_match_biases_every_continuation_of_it():
    scores = run([SOURCE], [[11, 5]])[0]  # 5 is followed by 6 and by 10 in the source
    assert scores[6] == scores[10] == pytest.approx(2.0)


def test_sentence_starts_get_the_start_bias_at_the_start_and_after_a_sentence_end():
    [at_start], [after_end], [mid] = (run([SOURCE], [reply]) for reply in ([], [12, END], [12]))
    assert at_start[4] == at_start[7] == 1.0 and at_start.sum() == 2.0
    assert after_end[4] == 1.0
    assert after_end[7] == pytest.approx(2.0)  # 7 also follows END in the source: the larger
    assert mid.abs().sum() == 0  # nothing in the source continues 12, and no sentence starts


def test_a_repeated_n_gram_is_banned_even_when_the_source_continues_it():
    scores = run([SOURCE], [[4, 5, 6, END, 4, 5]])[0]  # "4 5 6" again would repeat a 3-gram
    assert scores[6] == float("-inf")


def test_a_row_without_a_source_gets_the_penalty_on_its_reply_tokens_only():
    ids = torch.tensor([PROMPT + [4, 5]])
    processor = CopyBiasLogitsProcessor([None], len(PROMPT), {END}, 6.0, 1.0,
                                        repetition_penalty=2.0)
    scores = processor(ids, torch.full((1, VOCAB), 4.0))[0]
    assert scores[4] == scores[5] == 2.0  # the reply's tokens, divided by the penalty
    assert scores[1] == scores[2] == scores[3] == 4.0  # the prompt's tokens, untouched


PASSAGE = "Yes, we ship to the US and Canada. Standard shipping takes 3-5 business days."


def test_the_source_is_the_sentences_as_they_read_after_a_space(tiny_checkpoint):
    tokenizer = Generator.load(tiny_checkpoint).tokenizer
    source = copy_source(tokenizer, ["Yes, we ship.", "Standard shipping."])
    assert tokenizer.decode(list(source.ids)) == " Yes, we ship. Standard shipping."
    assert tokenizer(" Standard")["input_ids"][0] in source.starts
    assert tokenizer("Standard")["input_ids"][0] in source.starts


@pytest.mark.parametrize("bias", [0.0, 50.0])
def test_a_random_model_copies_the_passage_only_with_the_bias(tiny_checkpoint, bias):
    # A randomly initialised model writes noise; with a strong copy bias its greedy
    # reply is the passage's text, from the start of one of its sentences.
    generator = Generator.load(tiny_checkpoint)
    config = GenerationConfig(max_new_tokens=12, copy_bias=bias, max_time_s=30.0)
    passage = format_passage("Shipping", "", PASSAGE)
    reply = generator.generate([Turn("user", "do you ship to canada?")], config,
                               passages=[passage]).text.strip()
    words = reply.split()[:5]
    copied = len(words) == 5 and " ".join(words) in PASSAGE
    assert copied == (bias > 0), reply
