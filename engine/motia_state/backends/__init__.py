"""Backends carry out `motia_state.ops` operations; see `base` for the contract."""
