"""One host device per core: the XLA flag is set from the environment, never overriding a user's."""

import numpy as np
import pytest

from rhythmswitch import devices
from rhythmswitch.devices import ENV, configure_host_devices


def test_sets_one_device_per_usable_core(monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_enable_fast_math=false")
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.setattr(devices, "usable_cores", lambda: 3)
    assert configure_host_devices() == 3
    flags = devices.os.environ["XLA_FLAGS"]
    assert "--xla_cpu_enable_fast_math=false" in flags
    assert "--xla_force_host_platform_device_count=3" in flags


def test_environment_variable_sets_the_count(monkeypatch):
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    monkeypatch.setenv(ENV, "1")
    assert configure_host_devices() == 1
    assert devices.os.environ["XLA_FLAGS"] == "--xla_force_host_platform_device_count=1"


def test_existing_device_count_is_left_alone(monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=5")
    monkeypatch.setenv(ENV, "2")
    assert configure_host_devices() == 0
    assert devices.os.environ["XLA_FLAGS"] == "--xla_force_host_platform_device_count=5"


@pytest.mark.parametrize("bad", ["0", "two", "-1"])
def test_bad_count_names_the_variable(monkeypatch, bad):
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    monkeypatch.setenv(ENV, bad)
    with pytest.raises(ValueError, match=ENV):
        configure_host_devices()


def test_members_are_padded_to_the_device_count():
    from rhythmswitch.config import get_preset
    from rhythmswitch.train import init_member_state, make_optimizer, place_members

    cfg = get_preset("tiny")
    st = init_member_state(cfg, [1, 2, 3], make_optimizer(cfg))
    placed, it0, nd, k = place_members(st, np.array([0, 4, 9]))
    assert k == 3
    assert nd == len(devices.member_devices(3))
    assert it0.shape[0] % nd == 0 and it0.shape[0] >= 3
    np.testing.assert_array_equal(np.asarray(it0)[:3], [0, 4, 9])
    if nd > 1:  # the pad repeats the last member
        np.testing.assert_array_equal(np.asarray(it0)[3:], 9)
        w = np.asarray(placed.params.w_rec)
        np.testing.assert_array_equal(w[3:], np.broadcast_to(w[2], w[3:].shape))
