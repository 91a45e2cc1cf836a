"""The contract suite on every built-in backend: the very tests an adapter author runs with
``pytest -p motia_state.testing --motia-state-url URL`` (motia_state/testing/contract/), here
on memory, file, sqlite, embedded, Redis and Cluster through State and AsyncState, by conftest's
``target`` fixture overriding the plugin's. Capabilities a backend lacks skip, saying so."""

from __future__ import annotations

from motia_state.testing.contract.atomic import *  # noqa: F403
from motia_state.testing.contract.barrier import *  # noqa: F403
from motia_state.testing.contract.declared import *  # noqa: F403
from motia_state.testing.contract.feed import *  # noqa: F403
from motia_state.testing.contract.idempotency import *  # noqa: F403
from motia_state.testing.contract.inputs import *  # noqa: F403
from motia_state.testing.contract.items import *  # noqa: F403
from motia_state.testing.contract.query import *  # noqa: F403
from motia_state.testing.contract.scopes import *  # noqa: F403
from motia_state.testing.contract.transactions import *  # noqa: F403
from motia_state.testing.contract.ttl import *  # noqa: F403
from motia_state.testing.contract.values import *  # noqa: F403
