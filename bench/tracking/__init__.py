"""What reads results files over time: compare (the CI gate), history (SQLite trends), exports
for dashboards, and the pytest plugin. Rendering of their output lives in ``reports``."""
