"""Renderers of results files: tables, plots, Markdown and a self-contained HTML report."""
