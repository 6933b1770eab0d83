"""gptoss-harness benchmark side: model sources, loading, the sweep runner, results, the CLI."""

__version__ = "0.1.0"
