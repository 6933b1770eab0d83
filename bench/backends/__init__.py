"""What runs a model: ``base`` (the protocol the runner drives), ``timing`` (the per-token clock
every backend records), ``transformers`` (in-process) and ``openai`` (an OpenAI-compatible server)."""
