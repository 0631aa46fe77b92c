"""`dramatiq tests.worker.delivery.worker_process`: the production worker (deskbridge.worker_main),
configured from the same DESKBRIDGE_* variables, with Dramatiq's Redis upkeep made quick.

Dramatiq's Redis broker puts the unacknowledged messages of a worker whose heartbeat is older than
`heartbeat_timeout` back on their queues, during the upkeep that a live worker runs on a fraction
(`maintenance_chance` in a million) of its commands. Production's settings (worker.broker: 15 s, one
command in five) bring it back within about half a minute (test_requeue_delay.py); this worker checks on
every command and deems a worker silent for 1.5 s dead, so a test sees it come back within seconds.
"""

from dramatiq.brokers.redis import MAINTENANCE_SCALE, RedisBroker

from deskbridge.worker_main import broker

assert isinstance(broker, RedisBroker), "DESKBRIDGE_REDIS_URL must be set"
broker.heartbeat_timeout = 1_500
broker.maintenance_chance = MAINTENANCE_SCALE
