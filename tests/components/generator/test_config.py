import pytest

from components.generator.config import GenerationConfig, TrainConfig


@pytest.mark.parametrize("kwargs, message", [
    ({"temperature": 0.0}, "temperature"),
    ({"temperature": -1.0}, "do_sample=False"),
    ({"top_k": -1}, "top_k"),
    ({"top_p": 0.0}, "top_p"),
    ({"top_p": 1.5}, "top_p"),
    ({"repetition_penalty": 0.9}, "repetition_penalty"),
    ({"max_new_tokens": 0}, "max_new_tokens"),
    ({"max_time_s": 0}, "max_time_s"),
    ({"min_new_tokens": -1}, "min_new_tokens"),
    ({"min_new_tokens": 49, "max_new_tokens": 48}, "min_new_tokens"),
])
def test_generation_config_rejects_bad_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GenerationConfig(**kwargs)


def test_generation_config_from_dict_names_unknown_keys():
    with pytest.raises(ValueError, match="temprature"):
        GenerationConfig.from_dict({"temprature": 0.5})


def test_greedy_kwargs_leave_out_sampling_parameters():
    kwargs = GenerationConfig(do_sample=False).to_generate_kwargs()
    assert kwargs["do_sample"] is False
    assert not {"temperature", "top_k", "top_p"} & set(kwargs)
    sampled = GenerationConfig(do_sample=True, temperature=0.5, top_k=5, top_p=0.8)
    assert sampled.to_generate_kwargs()["temperature"] == 0.5
    assert sampled.to_generate_kwargs()["max_time"] == sampled.max_time_s


def test_min_new_tokens_is_passed_only_when_set():
    assert "min_new_tokens" not in GenerationConfig().to_generate_kwargs()
    fixed = GenerationConfig(min_new_tokens=40, max_new_tokens=40).to_generate_kwargs()
    assert fixed["min_new_tokens"] == fixed["max_new_tokens"] == 40


@pytest.mark.parametrize("kwargs, message", [
    ({"n_embd": 30, "n_head": 4}, "divisible"),
    ({"val_fraction": 1.0}, "val_fraction"),
    ({"epochs": 0}, "epochs"),
    ({"max_seq_len": 300, "n_positions": 256}, "max_seq_len"),
])
def test_train_config_rejects_bad_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**kwargs)


def test_train_config_round_trips_through_dict():
    cfg = TrainConfig(epochs=3, seed=7)
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
