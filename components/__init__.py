"""Custom components of the Kestrel Home assistant.

- ``generator/``: the local GPT reply generator (plain Python + torch, no Rasa).
- ``guardrails``: pure post-processing functions for generated text.
- ``gpt_policy``: the Rasa policy that spots open-ended turns and owns the generator.
- ``nlg``: the Rasa NLG step that writes the generated reply off the event loop.
- ``tracker_store``: Rasa's SQLTrackerStore configured by one URL.
"""
