"""What the API and the worker both run on, and nothing of either: the Redis clients that fail fast
through an outage (`redis_client.py`), and the Prometheus registry's exposition and the gauges both
set (`metrics.py`). It imports no package of ours; `api` and `worker` may both import it (the
layering: docs/architecture.md, tests/test_layers.py).

Importing the package names this process's Prometheus files first (`metric_files`), before any
module makes a metric.
"""

from infra import metric_files as _metric_files  # noqa: F401 - imported for its effect, first
