"""gptoss-harness, benchmark side. The flow, one subpackage per step:

``cli`` (the command line: the one place that wires the packages together) -> ``sweep`` (config,
runner, trackers, journal) -> ``backends`` (transformers in-process, OpenAI-compatible servers)
on ``models`` (hub, local, synthetic checkpoints; harmony; prompts) -> ``results`` (the file
contract) -> ``tracking`` (compare, history, export, pytest plugin) and ``reports``.
"""

from diagnostics.meta import tool_version

__version__ = tool_version()
