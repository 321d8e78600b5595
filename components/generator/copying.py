"""Copy bias: decoding that prefers to continue a span of the passages in the prompt.

Why: the built-in model (about 2.6M parameters) trained on passage-grounded answers
learns which part of a passage answers a question and how an answer starts ("No,
don't use it with..."), but alone it cannot keep a copied span going: after a few
tokens it drifts into its frequent words ("a few days of delivery with a few
days"), and transformers' repetition penalty makes that worse, because it also
penalises every token of the prompt, the very passage to copy from
(docs/benchmarks.md, "Training the built-in model on passages").

The pointer-generator (See et al. 2017, "Get To The Point") mixes the model's
vocabulary distribution with a copy distribution over the source tokens. This is
a decoding-time stand-in for it, written as a transformers ``LogitsProcessor``.
At every step, for each row:

1. **Copy.** Find the longest suffix of the reply so far (at most ``max_match``
   tokens) that occurs in the row's source token ids, and add
   ``bias * m / max_match`` (m: that suffix's length) to the logit of each token that
   follows it there. At the start of the reply and after a sentence end, add
   ``start_bias`` to each token that begins a source sentence. The model still
   chooses: which sentence to start, whether to copy on, and its own words in
   between ("No," before a copied "don't use it...").
2. **No repeats.** A token that would repeat an n-gram (``repeat_ngram`` tokens)
   already in the reply is banned, so a copied sentence is not copied twice.

A row with no source (a conversational turn in the same batch) gets instead
``repetition_penalty`` (CTRL's, Keskar et al. 2019) on the reply's own tokens,
since the batch's ``generate`` runs without transformers' own penalty.
Pure torch; no Rasa.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Sequence, Set, Tuple


@dataclass(frozen=True)
class CopySource:
    """The token ids a row may copy from.

    ``ids``: the source sentences' tokens, concatenated, each sentence as it
    reads after a space (how a reply continues a sentence). ``starts``: the
    first token of each sentence, as written after a space and at the very
    start of the text.
    """

    ids: Tuple[int, ...]
    starts: frozenset


def copy_source(tokenizer, sentences: Sequence[str]) -> CopySource:
    """The ``CopySource`` of ``sentences`` (plain text, one sentence each) for ``tokenizer``."""
    ids: List[int] = []
    starts: Set[int] = set()
    for sentence in sentences:
        spaced = tokenizer(" " + sentence, add_special_tokens=False)["input_ids"]
        bare = tokenizer(sentence, add_special_tokens=False)["input_ids"]
        if not spaced:
            continue
        ids += spaced
        starts.add(spaced[0])
        if bare:
            starts.add(bare[0])
    return CopySource(tuple(ids), frozenset(starts))


def _continuations(source: Sequence[int], reply: Sequence[int],
                   max_match: int) -> Tuple[int, Set[int]]:
    """(m, tokens): the longest suffix of ``reply`` (m <= max_match tokens) found in
    ``source``, and the tokens that follow it there; (0, set()) when none is found."""
    for m in range(min(max_match, len(reply)), 0, -1):
        suffix = list(reply[-m:])
        following = {source[j + m] for j in range(len(source) - m)
                     if list(source[j:j + m]) == suffix}
        if following:
            return m, following
    return 0, set()


def _repeats(reply: Sequence[int], n: int) -> Set[int]:
    """Tokens that would complete an n-gram already in ``reply``."""
    if n < 1 or len(reply) < n:
        return set()
    prefix = tuple(reply[len(reply) - n + 1:])
    return {reply[i + n - 1] for i in range(len(reply) - n + 1)
            if tuple(reply[i:i + n - 1]) == prefix}


class CopyBiasLogitsProcessor:
    """Adds the copy bias and bans repeats; see the module docstring.

    Args:
        sources: one ``CopySource`` per row of the batch, or None for a row
            that copies from nothing.
        prompt_length: T, the width of the (B, T) prompt; the reply of a row
            is ``input_ids[row, T:]``.
        sentence_ends: token ids whose text ends a sentence (".", "!", "?").
        bias: logit added to a token that continues a source span of
            ``max_match`` tokens; shorter matches get proportionally less.
        start_bias: logit added to a sentence's first token at a sentence start.
        max_match: tokens of the reply's suffix matched against the source.
        repeat_ngram: n of the banned repeated n-grams; 0 disables.
        repetition_penalty: >= 1, on the reply's own tokens of a row with no
            source; 1 disables.
    """

    def __init__(self, sources: Sequence, prompt_length: int, sentence_ends: Set[int],
                 bias: float, start_bias: float, max_match: int = 3,
                 repeat_ngram: int = 5, repetition_penalty: float = 1.0) -> None:
        self.sources = list(sources)
        self.prompt_length = prompt_length
        self.sentence_ends = set(sentence_ends)
        self.bias = bias
        self.start_bias = start_bias
        self.max_match = max_match
        self.repeat_ngram = repeat_ngram
        self.repetition_penalty = repetition_penalty

    def __call__(self, input_ids, scores):
        """``input_ids``: (B, T + t) LongTensor; ``scores``: (B, vocab) float logits.

        Returns ``scores``, changed in place.
        """
        for row in range(input_ids.shape[0]):
            reply = input_ids[row, self.prompt_length:].tolist()
            source = self.sources[row] if row < len(self.sources) else None
            if source is None and self.repetition_penalty != 1.0 and reply:
                seen = list(set(reply))
                logits = scores[row, seen]
                scores[row, seen] = logits.where(logits < 0, logits / self.repetition_penalty) \
                    .where(logits >= 0, logits * self.repetition_penalty)
            if source is not None:
                bonus: Dict[int, float] = {}
                m, following = _continuations(source.ids, reply, self.max_match)
                for token in following:
                    bonus[token] = self.bias * m / self.max_match
                if not reply or reply[-1] in self.sentence_ends:
                    for token in source.starts:
                        bonus[token] = max(bonus.get(token, 0.0), self.start_bias)
                for token, value in bonus.items():
                    scores[row, token] += value
            for token in _repeats(reply, self.repeat_ngram):
                scores[row, token] = float("-inf")
        return scores


def sentence_end_ids(tokenizer) -> Set[int]:
    """Ids of the vocabulary tokens whose text ends with ".", "!" or "?" (after stripping)."""
    ends = set()
    for token, index in tokenizer.get_vocab().items():
        text = tokenizer.convert_tokens_to_string([token]).strip()
        if text.endswith((".", "!", "?")):
            ends.add(index)
    return ends
