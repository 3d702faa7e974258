"""Which devices train the ensemble's members, and one CPU device per core.

XLA runs one compiled program on one CPU device at a time, and a small (B, N) x (N, N) product
per time step does not keep two cores busy (measured: a 20-member scan runs at ~38 GFLOP/s on
one CPU device and ~96 GFLOP/s when its members are split over two).  So, before JAX starts,
:func:`configure_host_devices` asks XLA for one host device per usable core
(``--xla_force_host_platform_device_count``), and the trainer splits its members over the
devices with ``shard_map`` (:func:`member_devices`).  On a GPU machine the members are split
over the GPUs the same way; with one device nothing changes.

``RHYTHMSWITCH_HOST_DEVICES=n`` sets the number of host devices (1 turns the split off); an
``XLA_FLAGS`` that already names a device count is left alone.  Importing :mod:`rhythmswitch`
calls :func:`configure_host_devices`; it has no effect if JAX's backend has already started.
"""

from __future__ import annotations

import os

_FLAG = "--xla_force_host_platform_device_count"
ENV = "RHYTHMSWITCH_HOST_DEVICES"


def usable_cores() -> int:
    """CPU cores this process may run on (the affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def configure_host_devices() -> int:
    """Ask XLA for one host device per usable core unless told otherwise; returns the count
    requested (0 when XLA_FLAGS already sets it)."""
    flags = os.environ.get("XLA_FLAGS", "")
    if _FLAG in flags:
        return 0
    raw = os.environ.get(ENV, "").strip()
    if raw:
        try:
            n = int(raw)
        except ValueError as exc:
            raise ValueError(f"{ENV}={raw!r}: expected a whole number of devices >= 1") from exc
        if n < 1:
            raise ValueError(f"{ENV}={raw!r}: expected a whole number of devices >= 1")
    else:
        n = usable_cores()
    os.environ["XLA_FLAGS"] = f"{flags} {_FLAG}={n}".strip()
    return n


def member_devices(n_members: int) -> list:
    """Devices to split ``n_members`` members over: all local devices of the default backend,
    at most one per member."""
    import jax

    devs = jax.local_devices()
    return devs[: max(1, min(len(devs), n_members))]
