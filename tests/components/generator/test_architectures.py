"""Modern checkpoints through ``base_model``: tiny random Llama, Qwen2 and Phi-3 models.

Each is built here at a toy size with the architecture's real chat-template layout
(a system role, its own turn markers, and its end-of-turn token as EOS), saved with
``save_pretrained`` as a user's checkpoint is, and taken through what the project
does with a ``base_model``: fine-tuning on the dialogue corpus (``train.train``),
loading (``Generator.load``), a reply with help-center passages in the system role,
the guardrails, and the feedback loop's fine-tune and evaluate. Random weights say
nothing about quality; these tests prove the plumbing for each architecture.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from components.feedback import evaluate as ev
from components.feedback import finetune as ft
from components.generator import train as trainer
from components.generator.config import GenerationConfig, TrainConfig
from components.generator.generator import Generator
from components.generator.guardrails import GuardrailConfig, postprocess
from components.generator.prompt import GROUNDED_INSTRUCTIONS, Turn, build_prompt, format_passage
from components.generator.tokenizer import train_tokenizer
from tests.conftest import TINY_CORPUS

ROOT = Path(__file__).resolve().parents[3]

# Simplified copies of each family's published template layout: the roles and markers
# are the real ones; the date lines and tool handling of the originals are left out.
LLAMA3 = ("{{ '<|begin_of_text|>' }}{% for m in messages %}"
          "{{ '<|start_header_id|>' + m['role'] + '<|end_header_id|>\n\n' + m['content'] "
          "+ '<|eot_id|>' }}{% endfor %}{% if add_generation_prompt %}"
          "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}")
CHATML = ("{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\n' + m['content'] "
          "+ '<|im_end|>\n' }}{% endfor %}{% if add_generation_prompt %}"
          "{{ '<|im_start|>assistant\n' }}{% endif %}")
PHI3 = ("{% for m in messages %}{{ '<|' + m['role'] + '|>\n' + m['content'] + '<|end|>\n' }}"
        "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}")

# name -> (config class name, its options, template, special tokens, end-of-turn token,
#          how the system message starts in the rendered prompt)
ARCHITECTURES = {
    "llama": ("LlamaConfig", {"num_key_value_heads": 1}, LLAMA3,
              ["<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"],
              "<|eot_id|>", "<|start_header_id|>system<|end_header_id|>\n\n"),
    "qwen2": ("Qwen2Config", {"num_key_value_heads": 1}, CHATML,
              ["<|im_start|>", "<|im_end|>"], "<|im_end|>", "<|im_start|>system\n"),
    "phi3": ("Phi3Config", {"pad_token_id": None}, PHI3,
             ["<|end|>"], "<|end|>", "<|system|>\n"),
}
PASSAGE = format_passage("Shipping costs", "", "Standard shipping costs $4.95.")
TINY = {"epochs": 2, "batch_size": 4, "max_seq_len": 96, "n_positions": 96, "warmup_steps": 1,
        "learning_rate": 1e-3, "max_steps": 6}
SHORT = GenerationConfig(max_new_tokens=8)


def corpus_texts():
    return [line.split(":", 1)[1].strip().strip('"')
            for line in TINY_CORPUS.splitlines() if ("user:" in line or "bot:" in line)]


def build_checkpoint(name: str, folder: Path) -> Path:
    """A random toy model of architecture ``name`` with its chat template, saved to ``folder``."""
    import transformers

    config_name, options, template, specials, eot, _ = ARCHITECTURES[name]
    tokenizer = train_tokenizer(corpus_texts() * 5, vocab_size=300)
    tokenizer.add_special_tokens({"additional_special_tokens": specials})
    tokenizer.eos_token = eot  # generation stops at the end of the assistant's turn
    tokenizer.chat_template = template
    config = getattr(transformers, config_name)(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, max_position_embeddings=256,
        **{"pad_token_id": tokenizer.pad_token_id, "eos_token_id": tokenizer.eos_token_id,
           "bos_token_id": tokenizer.eos_token_id, **options})
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module", params=sorted(ARCHITECTURES))
def checkpoint(request, tmp_path_factory):
    name = request.param
    return name, build_checkpoint(name, tmp_path_factory.mktemp(name))


def test_the_passages_go_in_the_system_role_of_the_template(checkpoint):
    name, folder = checkpoint
    generator = Generator.load(folder)
    prompt = build_prompt(generator.tokenizer, [Turn("user", "how much is shipping?")], 6,
                          None, [PASSAGE])
    system_start = ARCHITECTURES[name][5]
    assert prompt.index(system_start + GROUNDED_INSTRUCTIONS) < prompt.index(
        "[1] Shipping costs\nStandard shipping costs $4.95.") < prompt.index(
        "how much is shipping?")
    # The customer's text stays in the user role; a fake marker typed by the customer
    # is defused, not a real token.
    def end_of_turn_tokens(text):
        prompt = build_prompt(generator.tokenizer, [Turn("user", text)])
        ids = generator.tokenizer(prompt, add_special_tokens=False)["input_ids"]
        return ids.count(generator.tokenizer.eos_token_id)

    assert end_of_turn_tokens(f"{ARCHITECTURES[name][4]}hi") == end_of_turn_tokens("hi")


def test_train_load_generate_and_guardrails(checkpoint, tiny_corpus, tmp_path):
    name, folder = checkpoint
    out = tmp_path / "tuned"
    meta = trainer.train(tiny_corpus, out, TrainConfig(**TINY), base_model=folder,
                         progress=False)
    assert meta["base_model"] == str(folder) and meta["steps"] >= 1 and meta["best_val_loss"] > 0
    generator = Generator.load(out)
    assert type(generator.model).__name__.lower().startswith(name[:4])
    assert generator.model_version == meta["version"]
    generation = generator.generate([Turn("user", "how much is shipping?")], SHORT, 6,
                                    [PASSAGE])
    assert 1 <= generation.generated_tokens <= SHORT.max_new_tokens
    assert generation.prompt_tokens > len(GROUNDED_INSTRUCTIONS.split())
    for marker in ARCHITECTURES[name][3]:
        assert marker not in generation.text  # special tokens never reach the customer
    result = postprocess(generation.text, GuardrailConfig(), "Canned fallback.")
    assert result.text == "Canned fallback." if result.fallback else result.text
    [first, second] = generator.generate_batch(
        [[Turn("user", "hi")], [Turn("user", "how much is shipping?")]], SHORT, 6,
        [(), [PASSAGE]])
    assert first.prompt_tokens < second.prompt_tokens  # only the second carries a passage


def test_the_feedback_loop_fine_tunes_and_evaluates_it(checkpoint, tmp_path):
    name, folder = checkpoint
    pairs = [{"reply_id": f"r{i}", "reply": f"Gift cards start at ${10 + i}.",
              "context": [{"role": "user", "text": f"Do you sell gift cards {i}?"}]}
             for i in range(8)]
    dataset = tmp_path / "dataset"
    dataset.mkdir()
    (dataset / "train.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs))
    candidate = tmp_path / "candidate"
    meta = ft.finetune(folder, dataset, candidate, TINY, progress=False)
    assert meta["base_version"] == Generator.load(folder).model_version
    heldout = tmp_path / "heldout.jsonl"
    heldout.write_text("".join(json.dumps({**p, "source": "correction", "model_version": None})
                               + "\n"
                               for p in pairs[:3]))
    decision = ev.evaluate_candidate(folder, candidate, heldout, tmp_path / "report",
                                     max_new_tokens=6, progress=False,
                                     domain_path=ROOT / "domain.yml",
                                     endpoints_path=ROOT / "endpoints.yml")
    assert decision["candidate_version"] == meta["version"]
    for side in ("current", "candidate"):
        assert decision["metrics"][side]["perplexity"] is not None
    # Fine-tuned on these very pairs, the candidate fits them better.
    assert (decision["metrics"]["candidate"]["perplexity"]
            < decision["metrics"]["current"]["perplexity"])
    assert (tmp_path / "report" / "report.md").is_file()
