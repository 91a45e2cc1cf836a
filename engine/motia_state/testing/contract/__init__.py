"""The exported contract tests: each module is collected by ``pytest -p motia_state.testing
--motia-state-url URL`` and imported by the engine's own ``tests/test_contract.py``. A test here
uses the ``state``, ``open_state`` and ``target`` fixtures only, and says what it needs beyond
plain items with `motia_state.testing.requires`."""
