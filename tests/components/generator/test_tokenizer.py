from components.generator.tokenizer import EOS, PAD, SPECIAL_TOKENS, train_tokenizer


def test_byte_level_tokenizer_round_trips_any_text():
    tok = train_tokenizer(["where is my order", "the kettle arrived broken"] * 20, 300)
    for text in ["where is my order", "🙂 ünïcødé 订单 \t tabs", "KC-10423"]:
        ids = tok(text, add_special_tokens=False)["input_ids"]
        assert tok.decode(ids) == text


def test_special_tokens_and_chat_template():
    tok = train_tokenizer(["hello there"] * 10, 300)
    assert tok.eos_token == EOS and tok.pad_token == PAD
    for special in SPECIAL_TOKENS:
        assert len(tok(special, add_special_tokens=False)["input_ids"]) == 1
    prompt = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False,
                                     add_generation_prompt=True)
    assert prompt == "<|user|>hi<|assistant|>"
