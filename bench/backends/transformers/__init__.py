"""The in-process backend: transformers ``from_pretrained`` + ``generate`` with a per-token clock."""
