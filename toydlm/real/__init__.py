"""The real-model wing: analyses of real checkpoints (AR, SRI, the real-text twins and the audit).

`kit` holds what they share (the cell plan and store, the length test); each analysis depends
only on the kit, the bridge and the weights, never on another analysis (tests/toydlm/test_real_layering.py).
"""
