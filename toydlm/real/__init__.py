"""The real-model wing: analyses of real checkpoints (AR, SRI, the real-text twins and the audit).

`kit` holds what they share (cell plans and their store, opening a checkpoint, the prompt sets, the harm
judge's files, figure saving, the length test) and imports none of them; `ar`, `sri` and `twins` depend
only on the kit, the bridge, the weights and the lab's general modules; `audit` may also use `ar` and
`sri`. `tests/toydlm/real/test_real_layering.py` checks the rule (docs/design.md, section 2.1).
"""
