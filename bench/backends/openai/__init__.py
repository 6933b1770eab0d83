"""The ``openai`` backend: an OpenAI-compatible server driven over HTTP with streamed chat completions."""
