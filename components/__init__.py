"""Custom components of the Kestrel Home assistant, one sub-package per role.

- ``channels/``: REST, socket.io and Slack, Rasa's connectors behind request checks.
- ``nlu/``: text normalizer, MiniLM sentence featurizer, out-of-scope gate, safety intents.
- ``policies/``: the GPT policy, which decides when a turn is open-ended.
- ``nlg/``: the generative NLG, which writes the reply off the event loop.
- ``generator/``: the GPT generator and its guardrails; no Rasa imports.
- ``stores/``: Rasa's SQL tracker store configured by one URL.
- ``rasa_patches/``: every change to Rasa 3.6's own classes, each with its reason.
- ``feedback/``: the offline feedback loop (``python -m components.feedback``).

The dotted paths of the earlier flat layout (``components.gpt_policy.GPTPolicy``)
still import, with a warning naming the new path (``legacy_paths``).
"""
from components import legacy_paths as _legacy_paths

_legacy_paths.install()
