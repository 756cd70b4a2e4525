"""Reporting: the typed result model and every output made from it (terminal summary, JSON,
markdown, baselines and comparisons, budget verdicts, re-rendering). Pure."""
