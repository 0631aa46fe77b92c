"""The worker: Dramatiq actors and what they need.

Importing the package names this process's Prometheus files first (`worker.metric_files`), before
any module of it makes a metric.
"""

from worker import metric_files as _metric_files  # noqa: F401 - imported for its effect, first
