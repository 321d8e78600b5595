"""Configuration dataclasses for decoding and training.

Both reject bad values in the constructor with a message that names the field,
the bad value and the fix, in the manner of transformers' logits processors.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional, Type, TypeVar

T = TypeVar("T")


def _from_mapping(cls: Type[T], values: Optional[Mapping[str, Any]]) -> T:
    """Builds ``cls`` from a mapping, rejecting unknown keys by name.

    Raises:
        ValueError: if ``values`` holds a key that ``cls`` has no field for.
    """
    values = dict(values or {})
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(
            f"Unknown {cls.__name__} option(s) {unknown}; "
            f"valid options are {sorted(known)}."
        )
    return cls(**values)


@dataclass(frozen=True)
class GenerationConfig:
    """How one reply is decoded.

    Greedy decoding when ``do_sample`` is False; otherwise sampling with
    temperature, top-k and nucleus (top-p, Holtzman et al. 2019) filtering.
    """

    do_sample: bool = False  # False = greedy: same reply for the same context
    temperature: float = 0.7  # > 0; logits are divided by it (sampling only)
    top_k: int = 50  # keep the k most likely tokens; 0 disables (sampling only)
    top_p: float = 0.9  # keep the smallest set with mass >= top_p (sampling only)
    repetition_penalty: float = 1.3  # >= 1; 1 disables (Keskar et al. 2019, CTRL)
    max_new_tokens: int = 48  # tokens, upper bound on the reply length
    min_new_tokens: int = 0  # tokens; EOS is suppressed until then (benchmarks fix lengths)
    max_time_s: float = 2.0  # s, wall-clock budget for decoding one reply
    seed: Optional[int] = None  # fixes sampling for reproducible replies
    # Logit added to a token that continues a span of the help-center passages in the
    # prompt (components/generator/copying.py, after See et al. 2017's copy mechanism);
    # a quarter of it to a passage sentence's first token at a sentence start. 0 turns
    # it off. With it on, a reply from passages is decoded without repetition_penalty,
    # which would also penalise the passage's tokens. Chosen on held-apart questions
    # (docs/benchmarks.md, "Training the built-in model on passages").
    copy_bias: float = 0.0

    def __post_init__(self) -> None:
        if not self.temperature > 0:
            raise ValueError(
                f"temperature has to be a strictly positive float, got "
                f"{self.temperature!r}; for greedy decoding set do_sample=False."
            )
        if self.top_k < 0:
            raise ValueError(f"top_k has to be >= 0 (0 disables it), got {self.top_k!r}.")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p has to be in (0, 1], got {self.top_p!r}.")
        if self.repetition_penalty < 1:
            raise ValueError(
                f"repetition_penalty has to be >= 1.0 (1.0 disables it), "
                f"got {self.repetition_penalty!r}."
            )
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens has to be >= 1, got {self.max_new_tokens!r}.")
        if not 0 <= self.min_new_tokens <= self.max_new_tokens:
            raise ValueError(
                f"min_new_tokens has to be in [0, max_new_tokens={self.max_new_tokens}], "
                f"got {self.min_new_tokens!r}."
            )
        if not self.copy_bias >= 0:
            raise ValueError(f"copy_bias has to be >= 0 (0 turns it off), got {self.copy_bias!r}.")
        if not self.max_time_s > 0:
            raise ValueError(f"max_time_s has to be > 0 seconds, got {self.max_time_s!r}.")

    @classmethod
    def from_dict(cls, values: Optional[Mapping[str, Any]]) -> "GenerationConfig":
        """Builds a config from a YAML mapping (raises ValueError on unknown keys)."""
        return _from_mapping(cls, values)

    def to_generate_kwargs(self) -> Dict[str, Any]:
        """Keyword arguments for ``transformers`` ``model.generate``.

        Sampling-only parameters are left out for greedy decoding, so that
        transformers does not warn about unused flags.
        """
        kwargs: Dict[str, Any] = {
            "do_sample": self.do_sample,
            "max_new_tokens": self.max_new_tokens,
            "repetition_penalty": self.repetition_penalty,
            "max_time": self.max_time_s,
        }
        if self.min_new_tokens:
            kwargs["min_new_tokens"] = self.min_new_tokens
        if self.do_sample:
            kwargs.update(temperature=self.temperature, top_k=self.top_k, top_p=self.top_p)
        return kwargs


@dataclass(frozen=True)
class TrainConfig:
    """How the built-in model is trained, or a local checkpoint fine-tuned.

    The defaults give a ~2.6M-parameter GPT-2 that trains in a few minutes on
    2 CPU cores on a corpus of a few hundred dialogue turns.
    """

    # --- model shape (built-in model only; ignored when fine-tuning) ---
    vocab_size: int = 3000  # BPE vocabulary, tokens; small corpus, small vocab
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 192  # must be divisible by n_head
    n_positions: int = 256  # context window, tokens
    dropout: float = 0.1  # small corpus: regularise
    # --- optimisation ---
    epochs: int = 30  # upper bound; early stopping usually ends sooner
    batch_size: int = 16
    learning_rate: float = 1e-3  # 1e-3 from scratch; use ~5e-5 to fine-tune
    weight_decay: float = 0.01
    warmup_steps: int = 50
    max_seq_len: int = 160  # tokens per training example (prompt + reply)
    max_turns: int = 4  # conversation turns kept in each training prompt
    val_fraction: float = 0.1  # share of dialogues held out for validation
    patience: int = 3  # epochs without val-loss improvement before stopping
    seed: int = 42
    max_steps: Optional[int] = None  # hard cap on optimiser steps (tests)
    system_prompt: Optional[str] = None  # prepended to every prompt if set
    extra: Dict[str, Any] = field(default_factory=dict)  # free-form, recorded only

    def __post_init__(self) -> None:
        if self.n_embd % self.n_head:
            raise ValueError(
                f"n_embd ({self.n_embd}) has to be divisible by n_head ({self.n_head})."
            )
        if not 0 <= self.val_fraction < 1:
            raise ValueError(f"val_fraction has to be in [0, 1), got {self.val_fraction!r}.")
        for name in ("vocab_size", "n_layer", "n_head", "n_embd", "n_positions",
                     "epochs", "batch_size", "max_seq_len", "max_turns", "patience"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} has to be >= 1, got {getattr(self, name)!r}.")
        if self.max_seq_len > self.n_positions:
            raise ValueError(
                f"max_seq_len ({self.max_seq_len}) cannot exceed n_positions "
                f"({self.n_positions}); raise n_positions or lower max_seq_len."
            )

    @classmethod
    def from_dict(cls, values: Optional[Mapping[str, Any]]) -> "TrainConfig":
        """Builds a config from a YAML mapping (raises ValueError on unknown keys)."""
        return _from_mapping(cls, values)

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-serialisable copy, stored in every checkpoint."""
        return dataclasses.asdict(self)
