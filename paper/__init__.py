"""The paper: a Markdown template whose every number, table and figure is generated from `results/`."""
