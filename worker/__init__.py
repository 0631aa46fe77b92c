"""The worker: Dramatiq actors and what they need.

Importing the package names this process's Prometheus files first (`worker.metric_files`), before
any module of it makes a metric. Then it hands the store the connection kinds' registry
(connectors/kinds.py; see store/kinds.py): every process that runs store services imports this package.
"""

from worker import metric_files as _metric_files  # noqa: F401, I001 - imported for its effect, first
from connectors.kinds import REGISTRY as _KINDS
from store import kinds as _store_kinds

_store_kinds.install(_KINDS)
