"""Loading a local causal language model and decoding one reply.

Any Hugging Face causal LM directory works (``AutoModelForCausalLM`` +
``AutoTokenizer``, local files only, never a hub download): the built-in model
that ``train.py`` writes, or a GPT-2 / DialoGPT / Llama / Qwen2 / Phi checkpoint
saved with ``save_pretrained``.

A LoRA adapter folder (peft's ``adapter_config.json``, written by the feedback
loop's ``finetune --lora``) loads too: its ``generator_meta.json`` names the full
model it adapts (``adapter_of``: version and path), which is looked for first as
a sibling folder named by that version (the versions folder,
``models/generators/``), then at the recorded path. The adapter is merged into the
weights on load (``merge_and_unload``), so it decodes as fast as the base.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import AbstractSet, Any, Dict, FrozenSet, List, Optional, Sequence, Union

from components.generator import copying, grounding
from components.generator.config import GenerationConfig
from components.generator.prompt import Turn, build_prompt

logger = logging.getLogger(__name__)

META_FILE = "generator_meta.json"  # written by train.py next to the weights
# The sentence keys of the replies the built-in model learnt from (train.py): the
# fluency gate's known sentences (guardrails.unknown_sentences). Absent for other models.
KNOWN_FILE = "generator_known.json"
ADAPTER_CONFIG = "adapter_config.json"  # peft's file: the folder holds a LoRA adapter
# Meta key: True when the model learnt to answer from passages (train.passage_examples).
READS_PASSAGES = "reads_passages"
ADAPTER_OF = "adapter_of"  # meta key of an adapter: {"version", "path"} of its full model


class GeneratorLoadError(RuntimeError):
    """A checkpoint directory is missing or not a causal LM; the message says which."""


@dataclass(frozen=True)
class Generation:
    """One decoded reply and how it was made."""

    text: str  # decoded reply, special tokens removed, not yet post-processed
    model_id: str  # checkpoint name, e.g. "kestrel-gpt"
    model_version: str  # e.g. "kestrel-gpt-3f2a9c1d0b7e"
    # tokens, after left-truncation to the context window (None: a server that reports no usage)
    prompt_tokens: Optional[int]
    generated_tokens: Optional[int]  # tokens, EOS included when produced
    latency_ms: float  # ms, wall clock of tokenisation + decoding
    hit_time_budget: bool  # True when decoding stopped at max_time_s

    def metadata(self) -> Dict[str, Any]:
        """The fields recorded on the tracker event (everything but the text)."""
        meta = asdict(self)
        meta.pop("text")
        return meta


class Generator:
    """A loaded causal LM that answers the last user turn of a conversation.

    ``generate`` (one conversation) and ``generate_batch`` (several in one
    decoding) are thread-safe for concurrent calls (inference only, no state
    is mutated) and hold no Rasa objects, so they can run in a worker thread.
    """

    def __init__(self, model, tokenizer, model_id: str, model_version: str,
                 system_prompt: Optional[str] = None,
                 known_sentences: Optional[FrozenSet[str]] = None,
                 reads_passages: bool = False) -> None:
        """``known_sentences``: ``KNOWN_FILE``'s keys, or None for a model with no fluency gate.
        ``reads_passages``: the model learnt to answer from passages (its meta says so)."""
        self.reads_passages = reads_passages
        self.model = model.eval()
        self._ends: Optional[set] = None  # sentence-ending token ids, for the copy bias
        self.known_sentences = known_sentences
        self.tokenizer = tokenizer
        self.model_id = model_id
        self.model_version = model_version
        self.system_prompt = system_prompt
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        # Context window in tokens (GPT-2: n_positions; others: max_position_embeddings).
        cfg = model.config
        self.context_tokens = int(
            getattr(cfg, "n_positions", None) or getattr(cfg, "max_position_embeddings", 1024)
        )

    @classmethod
    def load(cls, path: Union[str, Path], system_prompt: Optional[str] = None,
             merge: bool = True) -> "Generator":
        """Loads a checkpoint directory (or a LoRA adapter on its base) from local files only.

        The version comes from ``generator_meta.json`` when present (built-in or
        fine-tuned models); otherwise it is ``<dir name>-unversioned``. An
        adapter is merged into its base's weights unless ``merge`` is False;
        then ``model`` is peft's ``PeftModel`` with the adapter trainable.

        Raises:
            GeneratorLoadError: if ``path`` is not a directory holding a
                tokenizer and a causal LM, or an adapter whose base is found.
        """
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = Path(path)
        if not path.is_dir():
            raise GeneratorLoadError(
                f"Generator checkpoint '{path}' is not a directory; point `base_model` "
                f"at a folder saved with save_pretrained()."
            )
        adapter = is_adapter(path)
        weights = adapter_base(path) if adapter else path
        if not (weights / "config.json").is_file():
            raise GeneratorLoadError(
                f"Generator checkpoint '{path}' has no config.json, so it is not a folder "
                f"written by save_pretrained(); point `base_model` at one that is."
            )
        try:
            tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
            model = AutoModelForCausalLM.from_pretrained(weights, local_files_only=True)
            if adapter:
                from peft import PeftModel

                model = PeftModel.from_pretrained(model, path, is_trainable=not merge)
                if merge:
                    model = model.merge_and_unload()
        except (OSError, ValueError) as e:
            raise GeneratorLoadError(f"Cannot load a causal LM from '{path}': {e}") from e
        meta = read_meta(path)
        model_id = meta.get("model_id", path.name)
        version = meta.get("version", f"{path.name}-unversioned")
        prompt = system_prompt if system_prompt is not None else meta.get("system_prompt")
        return cls(model, tokenizer, model_id, version, prompt, read_known(path),
                   bool(meta.get(READS_PASSAGES)))

    @property
    def n_parameters(self) -> int:
        """Number of parameters (weights shared between embedding and head count once)."""
        return sum(p.numel() for p in self.model.parameters())

    def _prompt_ids(self, turns: Sequence[Turn], config: GenerationConfig, max_turns: int,
                    passages: Sequence[str] = ()):
        """Token ids of the prompt for ``turns``: a (T,) LongTensor, T <= context - max_new.

        Raises:
            ValueError: as ``generate``.
        """
        prompt = build_prompt(self.tokenizer, turns, max_turns, self.system_prompt, passages)
        budget = self.context_tokens - config.max_new_tokens
        if budget < 1:
            raise ValueError(
                f"max_new_tokens ({config.max_new_tokens}) leaves no room for a prompt in "
                f"a {self.context_tokens}-token context; lower max_new_tokens."
            )
        ids = self.tokenizer(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"]
        return ids[0, -budget:]  # keep the most recent tokens

    def _generation(self, prompt_tokens: int, new, config: GenerationConfig,
                    elapsed_s: float) -> Generation:
        """A Generation from the new token ids ``new`` ((N,), EOS last when produced)."""
        ended = bool(len(new)) and int(new[-1]) == self.tokenizer.eos_token_id
        return Generation(
            text=self.tokenizer.decode(new, skip_special_tokens=True),
            model_id=self.model_id,
            model_version=self.model_version,
            prompt_tokens=int(prompt_tokens),
            generated_tokens=int(len(new)),
            latency_ms=round(elapsed_s * 1000.0, 1),
            hit_time_budget=(not ended and len(new) < config.max_new_tokens
                             and elapsed_s >= config.max_time_s),
        )

    def _copy_sources(self, passages: Sequence[str]):
        """The ``copying.CopySource`` of ``passages`` (``prompt.format_passage`` texts).

        A passage's first line names its article and section, so only the lines
        after it are sources; None for no passages.
        """
        if not passages:
            return None
        sentences = [s for p in passages
                     for s in grounding.split_sentences(p.split("\n", 1)[-1])]
        return copying.copy_source(self.tokenizer, sentences)

    def _sentence_ends(self):
        """The vocabulary's sentence-ending token ids, computed once per loaded model."""
        if self._ends is None:
            self._ends = copying.sentence_end_ids(self.tokenizer)
        return self._ends

    def _decode(self, ids, attention, config: GenerationConfig,
                passages: Sequence[Sequence[str]] = ()):
        """``model.generate`` on (B, T) ``ids`` and ``attention``: a (B, T + new) LongTensor.

        ``passages``: each row's passages (empty for none). When a row has some
        and ``config.copy_bias`` > 0, the batch decodes with the copy bias
        (``copying.CopyBiasLogitsProcessor``), which applies the repetition
        penalty itself, to the reply's tokens of rows with no passages only.
        Seeds torch's random stream first when ``config.seed`` is set; rows that
        end early are filled with ``pad_token_id``.
        """
        import torch

        kwargs = config.to_generate_kwargs()
        if config.copy_bias > 0 and any(passages):
            kwargs["repetition_penalty"] = 1.0
            kwargs["logits_processor"] = [copying.CopyBiasLogitsProcessor(
                [self._copy_sources(p) for p in passages], ids.shape[1],
                self._sentence_ends(), config.copy_bias, config.copy_bias / 4,
                repetition_penalty=config.repetition_penalty)]
        if config.seed is not None:
            torch.manual_seed(config.seed)
        with torch.inference_mode():
            return self.model.generate(
                input_ids=ids,
                attention_mask=attention,
                pad_token_id=self.tokenizer.pad_token_id,
                eos_token_id=self.tokenizer.eos_token_id,
                **kwargs,
            )

    def generate(self, turns: Sequence[Turn], config: GenerationConfig = GenerationConfig(),
                 max_turns: int = 6, passages: Sequence[str] = ()) -> Generation:
        """Decodes the reply to the last user turn of ``turns``.

        ``passages`` (``prompt.format_passage`` texts) go in the system message
        for a reply written from the help center (``prompt.build_prompt``).
        The prompt is cut from the left so that prompt + ``max_new_tokens``
        fit the model's context window. Decoding stops at EOS, after
        ``config.max_new_tokens`` tokens, or when ``config.max_time_s`` seconds
        have passed (transformers' ``MaxTimeCriteria``).

        Raises:
            ValueError: if ``turns`` does not end with a user turn, or the
                context window cannot hold ``max_new_tokens`` plus one token.
        """
        import torch

        start = time.perf_counter()
        ids = self._prompt_ids(turns, config, max_turns, passages)[None, :]  # (1, T)
        out = self._decode(ids, torch.ones_like(ids), config, [passages])  # (1, T + new)
        new = out[0, ids.shape[1]:]
        return self._generation(ids.shape[1], new, config, time.perf_counter() - start)

    def generate_batch(self, conversations: Sequence[Sequence[Turn]],
                       config: GenerationConfig = GenerationConfig(),
                       max_turns: int = 6,
                       passages: Optional[Sequence[Sequence[str]]] = None) -> List[Generation]:
        """Decodes the replies to B conversations in one ``model.generate`` call.

        ``passages``, when given, holds each conversation's passages (as
        ``generate`` takes them), in the same order.

        The B prompts are left-padded to the longest one, T tokens, giving
        (B, T) ``input_ids`` and a (B, T) ``attention_mask`` (0 on padding);
        positions are counted from each prompt's first real token, so a
        greedy reply is the one ``generate`` gives for the same conversation
        (up to float rounding of batched matrix products, which can only
        matter on an exact tie). The padding repeats each row's own first
        token, masked out, so that the repetition penalty sees exactly the
        prompt's tokens. Each row stops at its own EOS (or at
        ``max_new_tokens``); the batch stops when all rows have, or after
        ``config.max_time_s`` s for the whole batch.

        Sampling with a ``seed`` and B > 1 decodes the conversations one after
        another with ``generate``, so that each reply is the one the same
        request alone gets (a batch would share one random stream).

        Every Generation's ``latency_ms`` is the batch's wall time (ms): each
        caller waited that long. Returns the replies in the order given; an
        empty list for no conversations.

        Raises:
            ValueError: as ``generate``, if any conversation does not end with
                a user turn or the context cannot hold ``max_new_tokens``, or
                ``passages`` does not hold one list per conversation; then no
                reply is decoded.
        """
        import torch

        if not conversations:
            return []
        contexts = list(passages) if passages is not None else [()] * len(conversations)
        if len(contexts) != len(conversations):
            raise ValueError(f"{len(contexts)} passage lists for {len(conversations)} "
                             f"conversations; give one per conversation.")
        if config.do_sample and config.seed is not None and len(conversations) > 1:
            return [self.generate(turns, config, max_turns, context)
                    for turns, context in zip(conversations, contexts)]
        start = time.perf_counter()
        rows = [self._prompt_ids(turns, config, max_turns, context)
                for turns, context in zip(conversations, contexts)]
        width = max(len(row) for row in rows)
        ids = torch.empty((len(rows), width), dtype=torch.long)  # (B, T)
        attention = torch.zeros((len(rows), width), dtype=torch.long)  # (B, T)
        for i, row in enumerate(rows):
            pad = width - len(row)
            ids[i, :pad] = row[0]
            ids[i, pad:] = row
            attention[i, pad:] = 1
        out = self._decode(ids, attention, config, contexts)  # (B, T + new); finished rows padded
        elapsed = time.perf_counter() - start
        eos = self.tokenizer.eos_token_id
        generations = []
        for i, row in enumerate(rows):
            new = out[i, width:]
            ends = (new == eos).nonzero()
            if len(ends):
                new = new[: int(ends[0, 0]) + 1]  # up to and with the first EOS
            generations.append(self._generation(len(row), new, config, elapsed))
        return generations


def is_adapter(path: Union[str, Path]) -> bool:
    """True when ``path`` holds a LoRA adapter (peft's ``adapter_config.json``)."""
    return (Path(path) / ADAPTER_CONFIG).is_file()


def adapter_base(path: Union[str, Path]) -> Path:
    """The folder of the full model that the adapter in ``path`` adapts.

    The sibling folder named by ``adapter_of.version`` when it exists (the
    versions folder keeps both), else ``adapter_of.path``.

    Raises:
        GeneratorLoadError: if the metadata names no base, or neither folder exists.
    """
    path = Path(path)
    base = read_meta(path).get(ADAPTER_OF) or {}
    candidates = [path.parent / base["version"]] if base.get("version") else []
    candidates += [Path(base["path"])] if base.get("path") else []
    for folder in candidates:
        if (folder / "config.json").is_file():
            return folder
    raise GeneratorLoadError(
        f"'{path}' holds a LoRA adapter, but its base model is not at "
        f"{[str(c) for c in candidates] or 'any recorded place'}; put the base checkpoint "
        f"back there, or fine-tune again with `finetune --lora`.")


def read_meta(path: Union[str, Path]) -> Dict[str, Any]:
    """The checkpoint's ``generator_meta.json`` as a dict ({} when absent)."""
    meta_file = Path(path) / META_FILE
    if not meta_file.is_file():
        return {}
    return json.loads(meta_file.read_text(encoding="utf-8"))


def read_known(path: Union[str, Path]) -> Optional[FrozenSet[str]]:
    """The checkpoint's ``KNOWN_FILE`` sentence keys, or None when it has none."""
    known_file = Path(path) / KNOWN_FILE
    if not known_file.is_file():
        return None
    return frozenset(json.loads(known_file.read_text(encoding="utf-8")))


def write_known(path: Union[str, Path], known: Optional[AbstractSet[str]]) -> None:
    """Writes ``KNOWN_FILE`` into the checkpoint folder ``path``; nothing for None."""
    if known is not None:
        (Path(path) / KNOWN_FILE).write_text(json.dumps(sorted(known), ensure_ascii=False),
                                             encoding="utf-8")


def write_meta(path: Union[str, Path], meta: Dict[str, Any]) -> None:
    """Writes ``generator_meta.json`` into the checkpoint folder ``path``."""
    (Path(path) / META_FILE).write_text(json.dumps(meta, indent=2, default=str),
                                        encoding="utf-8")
