"""`toydlm audit`: the step-wise refusal analysis of any checkpoint, AR or diffusion, in one command.

`spec` parses and checks the settings, `plan` lists the cells, `sample` decodes one batch of a cell,
`store` keeps finished batches (resumable), `analyse` turns samples into the audit's tables,
`report` writes report.md and report.html, and `runner` ties them together (docs/audit.md).
"""
