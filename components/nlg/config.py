"""The validated options of GenerativeNLG: the ``nlg`` section of endpoints.yml.

Rasa hands the section's keys to the NLG unchecked (``EndpointConfig.kwargs``),
so a misspelt key or a wrong type would otherwise be ignored or fail on the
first customer's message. ``NLGConfig.from_dict`` checks every key once, when
the server starts, with a message that names the key, the bad value and the
fix, in the manner of ``components.generator.config``. ``read_nlg_config``
reads the same section from an endpoints.yml path, so the offline evaluation
(components/feedback/evaluate.py) decodes exactly as the bot does, from one copy
of the settings.
"""
from __future__ import annotations

import dataclasses
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Union

import yaml
from rasa.shared.exceptions import RasaException

from components.generator.answers import AnswerConfig
from components.generator.config import GenerationConfig
from components.generator.guardrails import GuardrailConfig
from components.generator.server import ServerConfig
from components.rasa_patches.action_fallback import DEFAULT_RESPONSE

# Keys that Rasa's EndpointConfig takes for itself; never part of ``kwargs``.
_ENDPOINT_KEYS = frozenset({"type", "store_type", "url", "params", "headers", "basic_auth",
                            "token", "token_name", "cafile"})
# Keys that older endpoints.yml files have and that are no longer read: key -> why and fix.
REMOVED_OPTIONS = {
    "response": (
        "The `nlg` option `response` in endpoints.yml is no longer read: the NLG now "
        "answers the GPTPolicy's `response` option in config.yml. Delete `response` "
        "from the `nlg` section of endpoints.yml (set the response name on the "
        "GPTPolicy in config.yml if it is not utter_gpt_reply)."
    ),
}
_PREFIX = "Invalid `nlg` option in endpoints.yml: "
_ENV_VAR = re.compile(r"\$\{(\w+)\}")  # ${VAR}, as Rasa's YAML reader substitutes it
# The nested sections: option name -> the validated config it becomes.
_SECTIONS = (("decoding", GenerationConfig), ("guardrails", GuardrailConfig),
             ("answers", AnswerConfig))


class NLGConfigError(RasaException):
    """The ``nlg`` section of endpoints.yml is invalid; the message names the key."""


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class NLGConfig:
    """What GenerativeNLG does with the GPT policy's response (endpoints.yml ``nlg``).

    Raises ``NLGConfigError`` from the constructor on an invalid value; build it
    from YAML with ``from_dict``, which also rejects unknown and removed keys.
    """

    # Conversation turns (user and bot messages) in the prompt: more context, longer
    # prompts; 6 covers a question, its follow-ups and the bot's answers.
    max_turns: int = 6
    # s, waited on top of decoding.max_time_s for queueing and tokenisation before the
    # caller gets the canned text.
    timeout_grace_s: float = 1.0
    # "Helpful" / "Not helpful" buttons under every generated reply, so customers can
    # rate it (the feedback loop's data); every reply gets a reply_id either way.
    rating_buttons: bool = True
    # Replies queued while the worker decodes are decoded together, at most this many:
    # one batch costs little more than one reply on 2 cores.
    max_batch_size: int = 8
    # torch intra-op threads of the decode worker; None: torch's default. One thread
    # leaves the other core to the event loop (scripted turns) while a batch decodes,
    # and decodes faster than two on a busy 2-core machine (docs/benchmarks.md,
    # "Generator throughput").
    torch_threads: Optional[int] = 1
    # Domain response sent when a custom action fails (action server down, 5xx,
    # timeout), instead of silence (components/rasa_patches/action_fallback.py).
    action_failure_response: str = DEFAULT_RESPONSE
    # How one reply is decoded (greedy by default: the same reply for the same context).
    decoding: GenerationConfig = field(default_factory=GenerationConfig)
    # Post-processing of the decoded text (components/generator/guardrails.py).
    guardrails: GuardrailConfig = field(default_factory=GuardrailConfig)
    # Answers from the help center: relevance threshold, citations
    # (components/generator/answers.py).
    answers: AnswerConfig = field(default_factory=AnswerConfig)
    # An OpenAI-compatible inference server (Ollama, llama.cpp, vLLM, TGI) that writes
    # the replies instead of the model in the archive (components/generator/server.py);
    # None: the archive's model.
    server: Optional[ServerConfig] = None

    def __post_init__(self) -> None:
        if not _is_int(self.max_turns) or self.max_turns < 1:
            raise NLGConfigError(f"{_PREFIX}max_turns has to be an integer >= 1 (turns in the "
                                 f"prompt), got {self.max_turns!r}; the default is 6.")
        grace = self.timeout_grace_s
        if (not isinstance(grace, (int, float)) or isinstance(grace, bool)
                or not math.isfinite(grace) or grace < 0):
            raise NLGConfigError(f"{_PREFIX}timeout_grace_s has to be a number of seconds >= 0, "
                                 f"got {self.timeout_grace_s!r}; the default is 1.0.")
        object.__setattr__(self, "timeout_grace_s", float(self.timeout_grace_s))
        if not isinstance(self.rating_buttons, bool):
            raise NLGConfigError(f"{_PREFIX}rating_buttons has to be true or false, got "
                                 f"{self.rating_buttons!r}.")
        if not _is_int(self.max_batch_size) or self.max_batch_size < 1:
            raise NLGConfigError(f"{_PREFIX}max_batch_size has to be an integer >= 1, got "
                                 f"{self.max_batch_size!r}; the default is 8 (1: no batching).")
        if self.torch_threads is not None and (not _is_int(self.torch_threads)
                                               or self.torch_threads < 1):
            raise NLGConfigError(f"{_PREFIX}torch_threads has to be an integer >= 1 or null, "
                                 f"got {self.torch_threads!r}; the default is 1, null keeps "
                                 f"torch's default.")
        if not isinstance(self.action_failure_response, str) or not self.action_failure_response:
            raise NLGConfigError(f"{_PREFIX}action_failure_response has to be the name of a "
                                 f"domain response, got {self.action_failure_response!r}; the "
                                 f"default is {DEFAULT_RESPONSE!r}.")
        if self.server is not None and not isinstance(self.server, ServerConfig):
            raise NLGConfigError(f"{_PREFIX}server has to be a ServerConfig, got "
                                 f"{self.server!r}; build the config with NLGConfig.from_dict "
                                 f"to pass a mapping.")
        for name, kind in _SECTIONS:
            if not isinstance(getattr(self, name), kind):
                raise NLGConfigError(f"{_PREFIX}{name} has to be a {kind.__name__}, got "
                                     f"{getattr(self, name)!r}; build the config with "
                                     f"NLGConfig.from_dict to pass a mapping.")

    @classmethod
    def from_dict(cls, values: Optional[Mapping[str, Any]]) -> "NLGConfig":
        """Builds the config from the ``nlg`` section's options (``type`` excluded).

        ``decoding``, ``guardrails`` and ``answers`` are mappings of
        ``GenerationConfig``, ``GuardrailConfig`` and ``AnswerConfig`` options; a
        missing key takes its default.

        Raises:
            NLGConfigError: on a removed key (``response``), an unknown key, or an
                invalid value; the message names the key.
        """
        if values is not None and not isinstance(values, Mapping):
            raise NLGConfigError(f"The `nlg` section of endpoints.yml has to be a mapping of "
                                 f"options, got {values!r}.")
        options: Dict[str, Any] = dict(values or {})
        for key, message in REMOVED_OPTIONS.items():
            if key in options:
                raise NLGConfigError(message)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise NLGConfigError(
                f"Unknown option(s) {unknown} in the `nlg` section of endpoints.yml; "
                f"valid options are {sorted(known)}."
            )
        for name, kind in _SECTIONS:
            section = options.get(name)
            if section is not None and not isinstance(section, Mapping):
                raise NLGConfigError(f"{_PREFIX}{name} has to be a mapping of {kind.__name__} "
                                     f"options, got {section!r}.")
            try:
                options[name] = kind.from_dict(section)
            except (ValueError, TypeError) as e:
                raise NLGConfigError(f"{_PREFIX}{name}: {e}") from e
        server = options.get("server")
        if server is not None:
            if not isinstance(server, Mapping):
                raise NLGConfigError(f"{_PREFIX}server has to be a mapping with url and model "
                                     f"(an OpenAI-compatible API), got {server!r}.")
            try:
                options["server"] = ServerConfig.from_dict(server)
            except (ValueError, TypeError) as e:
                raise NLGConfigError(f"{_PREFIX}server: {e}") from e
        return cls(**options)

    def generates_answers(self, reads_passages: bool = False) -> bool:
        """Whether the generator writes help-center answers (``answers.generate``).

        ``generate: null`` means: when a server is set, or when the local model
        learnt to answer from passages (``reads_passages``, its metadata's
        ``generator.READS_PASSAGES``).
        """
        if self.answers.generate is None:
            return self.server is not None or reads_passages
        return self.answers.generate


def read_nlg_config(path: Union[str, Path] = "endpoints.yml") -> NLGConfig:
    """The ``nlg`` section of the endpoints file at ``path`` as an ``NLGConfig``.

    Keys that Rasa's ``EndpointConfig`` takes itself (``type``, ``url``, ...)
    are left out, as Rasa leaves them out of the NLG's options. A file without
    an ``nlg`` section gives the defaults. Environment variables (``${VAR}``,
    e.g. in ``server``) are substituted in the ``nlg`` section, as Rasa does.

    Raises:
        FileNotFoundError: if there is no file at ``path``.
        NLGConfigError: if the file is not a YAML mapping, or its ``nlg``
            section is invalid (as ``NLGConfig.from_dict``).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No endpoints file at '{path}'; run from the project folder "
                                f"or give the path of endpoints.yml.")
    try:
        content = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise NLGConfigError(f"'{path}' is not valid YAML: {e}") from e
    if not isinstance(content, dict):
        raise NLGConfigError(f"'{path}' has to be a YAML mapping of endpoint sections.")
    section = content.get("nlg")
    if isinstance(section, Mapping):
        section = {k: _expand(v) for k, v in section.items() if k not in _ENDPOINT_KEYS}
    return NLGConfig.from_dict(section)


def _expand(value: Any) -> Any:
    """``value`` with ``${VAR}`` in its strings replaced from the environment, as Rasa does.

    Only the ``nlg`` section is expanded, so an offline reader does not need
    the other sections' secrets.

    Raises:
        NLGConfigError: naming a variable that is not set.
    """
    if isinstance(value, Mapping):
        return {k: _expand(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v) for v in value]
    if isinstance(value, str):
        missing = [name for name in _ENV_VAR.findall(value) if name not in os.environ]
        if missing:
            raise NLGConfigError(f"The `nlg` section of endpoints.yml uses the environment "
                                 f"variable(s) {missing}, which are not set; export them.")
        return _ENV_VAR.sub(lambda m: os.environ[m.group(1)], value)
    return value
