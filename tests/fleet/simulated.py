"""The shops of the fleet tests: ``huke_k3_bridge.celery.testing``'s simulated fleet."""

from huke_k3_bridge.celery.testing import (
    HOUR_MS,
    InFlight,
    K3Account,
    Shop,
    Simulators,
    start_simulators,
)

__all__ = ["HOUR_MS", "InFlight", "K3Account", "Shop", "Simulators", "start_simulators"]
