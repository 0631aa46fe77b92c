"""The worker: Dramatiq actors and what they need.

Importing the package names this process's Prometheus files first (`import infra`: see
infra/metric_files.py), before any module of it makes a metric. Then it hands the store the connection kinds' registry
(connectors/kinds.py; see store/kinds.py): every process that runs store services imports this package.
"""

import infra  # noqa: F401 - imported for its effect, first
from connectors.kinds import REGISTRY as _KINDS
from store import kinds as _store_kinds

_store_kinds.install(_KINDS)
