"""Writes the built-in generator (a GPT-2 checkpoint folder) as a GGUF file for llama.cpp.

    python scripts/gguf_export.py <checkpoint folder> <out.gguf>

Run it with a Python that has the ``gguf``, ``numpy`` and ``safetensors`` packages
(scripts/install_llama_server.sh makes one: .venv-llama/bin/python). For other
architectures (Llama, Qwen2, Phi) use llama.cpp's own convert_hf_to_gguf.py: it
knows their published tokenizers, while this project's tokenizer is its own.

Why not llama.cpp's converter for the built-in model: it recognises a BPE
tokenizer by hashing how it splits a fixed test text, and refuses tokenizers it has
not seen (the project trains its own). Ours is byte-level BPE with GPT-2's
pre-tokenizer regex (components/generator/tokenizer.py), which is llama.cpp's
"gpt-2" pre-tokenizer, so it is written as that. The tensors are GPT-2's, named by
gguf's own tensor map (``gguf.get_tensor_name_map``); the Conv1D weights are
transposed to the (out, in) layout llama.cpp reads, as its converter does
(conversion/gpt2.py); the output head, tied to the token embedding, is written out.
Weights stay float32. The chat template goes in ``tokenizer.chat_template``, so a
server that applies templates builds the same prompt as the project does.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

CONV1D = (".c_attn.weight", ".c_proj.weight", ".c_fc.weight")  # stored (in, out) by GPT-2
UNUSED = (".attn.bias", ".attn.masked_bias")  # causal-mask buffers, not weights


def export(folder: Path, out: Path) -> None:
    """Writes ``folder`` (config.json, model.safetensors, tokenizer.json) to ``out``.

    Raises:
        ValueError: if the checkpoint is not a GPT-2 (GPT2LMHeadModel) folder.
        FileNotFoundError: if one of the three files is missing.
    """
    import gguf
    import numpy as np
    from safetensors.numpy import load_file

    config = json.loads((folder / "config.json").read_text())
    if config.get("model_type") != "gpt2":
        raise ValueError(f"{folder} holds a {config.get('model_type')!r} model; this exports "
                         f"the built-in GPT-2 only (use llama.cpp's convert_hf_to_gguf.py).")
    tok = json.loads((folder / "tokenizer.json").read_text())
    tok_config = json.loads((folder / "tokenizer_config.json").read_text())
    meta_file = folder / "generator_meta.json"
    meta = json.loads(meta_file.read_text()) if meta_file.is_file() else {}

    writer = gguf.GGUFWriter(str(out), "gpt2")
    writer.add_name(meta.get("version", folder.name))
    n_embd, n_layer = config["n_embd"], config["n_layer"]
    writer.add_context_length(config["n_positions"])
    writer.add_embedding_length(n_embd)
    writer.add_feed_forward_length(config.get("n_inner") or 4 * n_embd)
    writer.add_block_count(n_layer)
    writer.add_head_count(config["n_head"])
    writer.add_layer_norm_eps(config["layer_norm_epsilon"])
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)

    vocab = tok["model"]["vocab"]  # token -> id
    size = max([*vocab.values(), *(a["id"] for a in tok["added_tokens"])]) + 1
    tokens = [f"[PAD{i}]" for i in range(size)]
    types = [gguf.TokenType.UNUSED] * size
    for token, i in vocab.items():
        tokens[i], types[i] = token, gguf.TokenType.NORMAL
    for added in tok["added_tokens"]:
        tokens[added["id"]] = added["content"]
        types[added["id"]] = (gguf.TokenType.CONTROL if added["special"]
                              else gguf.TokenType.USER_DEFINED)
    ids = {t: i for i, t in enumerate(tokens)}
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("gpt-2")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges([m if isinstance(m, str) else " ".join(m)
                             for m in tok["model"]["merges"]])
    eos = ids[tok_config["eos_token"]]
    writer.add_bos_token_id(eos)
    writer.add_eos_token_id(eos)
    if tok_config.get("pad_token") in ids:
        writer.add_pad_token_id(ids[tok_config["pad_token"]])
    writer.add_add_bos_token(False)
    template_file = folder / "chat_template.jinja"  # where transformers >= 4.56 saves it
    template = tok_config.get("chat_template") or (
        template_file.read_text() if template_file.is_file() else None)
    if template:
        writer.add_chat_template(template)

    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.GPT2, n_layer)
    weights = load_file(str(folder / "model.safetensors"))
    if "lm_head.weight" not in weights:  # tied to the token embedding
        weights["lm_head.weight"] = weights["transformer.wte.weight"]
    for name, tensor in weights.items():
        if name.endswith(UNUSED):
            continue
        if name.endswith(CONV1D):
            tensor = tensor.T
        new = names.get_name(name, try_suffixes=(".weight", ".bias"))
        if new is None:
            raise ValueError(f"no GGUF name for the tensor {name!r}")
        writer.add_tensor(new, np.ascontiguousarray(tensor, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        sys.exit("usage: python scripts/gguf_export.py <checkpoint folder> <out.gguf>")
    export(Path(argv[0]), Path(argv[1]))
    print(f"wrote {argv[1]}")


if __name__ == "__main__":
    main()
