"""Post-processing of generated replies: pure functions, no model, no Rasa.

``postprocess(raw, config)`` runs the chain in order:

1. ``strip_prompt_echo``     - cut the reply where the model starts a new turn;
2. ``strip_special_tokens``  - drop ``<|...|>`` markers the decoder left in;
3. ``collapse_repetitions``  - remove repeated words, phrases and sentences;
4. ``cut_to_sentences``      - keep whole sentences within ``max_chars``;
5. ``mask_pii``              - replace emails, phone and card numbers;
6. ``blocked_reason``        - reject unsafe or off-topic text by blocklist;
7. fall back to the canned reply when the result is empty, rejected or late.

``unknown_sentences(text, known)`` is the fluency gate the NLG applies after the
chain to a conversational reply of the built-in model (components/nlg/generative_nlg.py).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import AbstractSet, Any, List, Mapping, Optional, Sequence, Set, Tuple

# Role markers of the chat template and of the plain "User:" transcript format.
_SPECIAL = re.compile(r"<\|[a-z_]+\|>")
_ECHO = re.compile(r"(<\|(?:user|system|assistant)\|>"
                   r"|\b(?:User|Customer|Assistant|Bot|System)\s*:)",
                   re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_REPEATED_WORD = re.compile(r"\b(\w+)(?:\s+\1\b)+", re.IGNORECASE)

_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
# 13-19 digits, optionally grouped by spaces or dashes (ISO/IEC 7812 card numbers).
_CARD = re.compile(r"\b\d(?:[ -]?\d){12,18}\b")
# Phone numbers: optional +country, 7-15 digits in groups (ITU-T E.164 allows 15).
_PHONE = re.compile(r"(?<![\w])\+?\d[\d ().-]{5,18}\d(?![\w])")
_LOCAL_PHONE = re.compile(r"\d{3}[ .-]\d{4}")

# Addresses that the store publishes itself and which are therefore not PII.
PUBLIC_CONTACTS = ("support@kestrelhome.example", "+1 555 0100")

DEFAULT_BLOCKLIST = (
    # Unsafe: violence, self-harm instructions, slurs are matched by stem.
    r"\bkill (?:yourself|urself)\b",
    r"\bhow to (?:make|build) (?:a )?(?:bomb|weapon|explosive)",
    r"\bsuicide method",
    r"\bstupid customer\b",
    # Off-topic for a store: advice the bot must never give.
    r"\b(?:buy|sell) (?:shares|stocks|crypto)\b",
    r"\b(?:diagnos(?:e|is)|prescri(?:be|ption))\b",
    # Leaking its own instructions.
    r"\bsystem prompt\b",
    r"\bmy instructions (?:are|say)\b",
)


@dataclass(frozen=True)
class GuardrailConfig:
    """Settings of the post-processing chain (endpoints.yml, ``nlg.guardrails``)."""

    max_chars: int = 320  # characters; longer replies are cut at a sentence end
    min_chars: int = 2  # characters; anything shorter falls back
    blocklist: Tuple[str, ...] = DEFAULT_BLOCKLIST  # case-insensitive regexes
    mask_pii: bool = True

    def __post_init__(self) -> None:
        if self.max_chars < 20:
            raise ValueError(f"max_chars has to be >= 20, got {self.max_chars!r}.")
        if self.min_chars < 0:
            raise ValueError(f"min_chars has to be >= 0, got {self.min_chars!r}.")
        for pattern in self.blocklist:
            try:
                re.compile(pattern)
            except re.error as e:
                raise ValueError(f"blocklist entry {pattern!r} is not a valid regex: {e}.") from e

    @classmethod
    def from_dict(cls, values: Optional[Mapping[str, Any]]) -> "GuardrailConfig":
        """Builds a config from YAML; ``extra_blocklist`` extends the default list.

        Raises:
            ValueError: on an unknown key or an invalid value.
        """
        values = dict(values or {})
        extra = tuple(values.pop("extra_blocklist", ()) or ())
        unknown = sorted(set(values) - {"max_chars", "min_chars", "blocklist", "mask_pii"})
        if unknown:
            raise ValueError(f"Unknown guardrail option(s) {unknown}.")
        if "blocklist" in values:
            values["blocklist"] = tuple(values["blocklist"] or ())
        cfg = cls(**values)
        return cls(cfg.max_chars, cfg.min_chars, cfg.blocklist + extra, cfg.mask_pii)


@dataclass(frozen=True)
class GuardrailResult:
    """The reply to send and why it looks the way it does."""

    text: str  # the cleaned reply, or the fallback text
    fallback: Optional[str]  # None, or why the fallback was used: empty/blocked/timeout/error
    actions: List[str] = field(default_factory=list)  # what the chain changed, in order


def strip_special_tokens(text: str) -> str:
    """Removes ``<|...|>`` tokens left in decoded text."""
    return _SPECIAL.sub(" ", text)


def strip_prompt_echo(text: str) -> str:
    """Cuts the text at the first role marker: the model began another turn."""
    match = _ECHO.search(text)
    return text[: match.start()] if match else text


def _normalise_space(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def collapse_repetitions(text: str) -> str:
    """Removes immediately repeated words and any sentence already said."""
    text = _REPEATED_WORD.sub(r"\1", text)
    seen, kept = set(), []
    for sentence in _SENTENCE_END.split(_normalise_space(text)):
        key = re.sub(r"\W+", " ", sentence.lower()).strip()
        if key and key not in seen:
            seen.add(key)
            kept.append(sentence)
    return " ".join(kept)


def cut_to_sentences(text: str, max_chars: int) -> str:
    """Keeps whole sentences up to ``max_chars`` characters.

    A trailing fragment without end punctuation is dropped when at least one
    whole sentence precedes it; a single over-long sentence is cut at a word
    boundary and ends with an ellipsis.
    """
    text = _normalise_space(text)
    sentences = _SENTENCE_END.split(text)
    if len(sentences) > 1 and not re.search(r"[.!?]$", sentences[-1]):
        sentences = sentences[:-1]
    kept: List[str] = []
    for sentence in sentences:
        if len(" ".join(kept + [sentence])) > max_chars:
            break
        kept.append(sentence)
    if kept:
        return " ".join(kept)
    if len(text) <= max_chars:
        return text
    return text[: max_chars - 1].rsplit(" ", 1)[0].rstrip(",;:") + "…"


def _luhn_valid(digits: str) -> bool:
    """Luhn checksum (ISO/IEC 7812-1) of a digit string."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def mask_pii(text: str) -> str:
    """Replaces emails, card numbers and phone numbers with placeholders.

    Card numbers are masked when they pass the Luhn check; the store's own
    published contacts (``PUBLIC_CONTACTS``) are left as they are.
    """
    def email(m: re.Match) -> str:
        return m.group(0) if m.group(0).lower() in PUBLIC_CONTACTS else "[email]"

    def card(m: re.Match) -> str:
        digits = re.sub(r"\D", "", m.group(0))
        return "[card number]" if _luhn_valid(digits) else m.group(0)

    def phone(m: re.Match) -> str:
        raw = m.group(0)
        digits = re.sub(r"\D", "", raw)
        if raw.strip() in PUBLIC_CONTACTS or len(digits) > 15:
            return raw
        # 10+ digits, or "+" and 7+, or a local 3-4 group; not dates like 2024-05-01.
        if not (len(digits) >= 10 or (raw.startswith("+") and len(digits) >= 7)
                or _LOCAL_PHONE.fullmatch(raw.strip())):
            return raw
        return "[phone]"

    text = _EMAIL.sub(email, text)
    text = _CARD.sub(card, text)
    return _PHONE.sub(phone, text)


def blocked_reason(text: str, blocklist: Sequence[str]) -> Optional[str]:
    """The first blocklist pattern that matches ``text`` (case-insensitive), or None."""
    for pattern in blocklist:
        if re.search(pattern, text, re.IGNORECASE):
            return pattern
    return None


def sentence_key(sentence: str) -> str:
    """How ``unknown_sentences`` compares sentences: lower-cased letters, digits and
    apostrophes, whitespace collapsed ("Sorry to hear that!" -> "sorry to hear that")."""
    return " ".join(re.sub(r"[^\w' ]+", " ", sentence.lower()).split())


def unknown_sentences(text: str, known: AbstractSet[str]) -> List[str]:
    """The sentences of ``text`` whose ``sentence_key`` is not in ``known``.

    The fluency gate for a model that cannot write fluent English of its own.
    The built-in 2.6M-parameter model splices the replies it was trained on
    into word salad ("I'm not sure a few days of delivery. I can help with?"):
    on 20 chit-chat messages none of its 20 replies was fluent, and every
    garbled sentence was one that no reply of its corpus holds. A reply made
    only of sentences the team wrote is fluent however the model chose them,
    so ``known`` is the set of ``sentence_key`` of the corpus's replies
    (``sentence_keys``; generator.KNOWN_FILE, written by components/generator/train.py).
    """
    return [s for s in _SENTENCE_END.split(text) if s.strip() and sentence_key(s) not in known]


def sentence_keys(texts: Sequence[str]) -> Set[str]:
    """The ``sentence_key`` of every sentence of ``texts``: what ``unknown_sentences`` knows."""
    return {sentence_key(s) for text in texts for s in _SENTENCE_END.split(text) if s.strip()}


def postprocess(raw: str, config: GuardrailConfig, fallback_text: str,
                timed_out: bool = False) -> GuardrailResult:
    """Runs the whole chain on a raw generated reply.

    Args:
        raw: decoded model output.
        config: guardrail settings.
        fallback_text: the canned reply used when the output cannot be sent.
        timed_out: True when decoding hit its time budget; the (partial)
            reply is then replaced by the fallback.

    Returns:
        A ``GuardrailResult``; ``fallback`` says why the canned reply was used.
    """
    actions: List[str] = []
    if timed_out:
        return GuardrailResult(fallback_text, "timeout", ["timeout"])
    text = raw
    for name, step in (("strip_prompt_echo", strip_prompt_echo),
                       ("strip_special_tokens", strip_special_tokens),
                       ("collapse_repetitions", collapse_repetitions),
                       ("cut_to_sentences", lambda t: cut_to_sentences(t, config.max_chars))):
        new = step(text)
        if _normalise_space(new) != _normalise_space(text):
            actions.append(name)
        text = new
    if config.mask_pii:
        masked = mask_pii(text)
        if masked != text:
            actions.append("mask_pii")
        text = masked
    text = _normalise_space(text)
    reason = blocked_reason(text, config.blocklist)
    if reason:
        return GuardrailResult(fallback_text, "blocked", actions + [f"blocked:{reason}"])
    if len(text) < config.min_chars or not re.search(r"\w", text):
        return GuardrailResult(fallback_text, "empty", actions + ["empty"])
    return GuardrailResult(text, None, actions)
