import numpy as np
import pytest

from conftest import random_network
from rhythmswitch.network import A_FLOOR, Network, NetworkFileError, load_network, save_network


def test_round_trip(tmp_path, hand_network):
    path = save_network(hand_network, tmp_path / "n.npz")
    back = load_network(path)
    for key, arr in hand_network.to_arrays().items():
        np.testing.assert_array_equal(back.to_arrays()[key], arr)
    assert back.name == "n" and back.form == "current"


def test_file_written_by_another_tool_with_extra_keys(tmp_path, hand_network):
    arrays = hand_network.to_arrays()
    arrays.pop("form")
    arrays["optimizer_state"] = np.zeros(3)
    arrays["W_rec"] = arrays["W_rec"].astype(np.float32)
    np.savez(tmp_path / "torch.npz", **arrays)
    net = load_network(tmp_path / "torch.npz")
    assert net.form == "current" and "optimizer_state" in net.extras


def test_frozen_neuron_gets_a_floor():
    n = random_network(n=4, m=2)
    net = Network.from_a(
        W_rec=n.W_rec,
        W_in=n.W_in,
        b=n.b,
        a=np.array([0.0, 0.02, 1.0, 0.5]),
        dt_s=0.001,
        bands_hz=n.bands_hz,
        mode_names=n.mode_names,
    )
    assert np.all(np.isfinite(net.tau_s)) and net.tau_s[0] == pytest.approx(0.001 / A_FLOOR)
    np.testing.assert_allclose(net.a[1:], [0.02, 1.0, 0.5])


def _bad(tmp_path, **changes):
    arrays = random_network(n=5, m=4).to_arrays()
    for k, v in changes.items():
        if v is None:
            arrays.pop(k)
        else:
            arrays[k] = v
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(NetworkFileError) as info:
        load_network(path)
    assert str(path) in str(info.value)
    return str(info.value)


def test_bad_files_are_refused_with_the_problem(tmp_path):
    assert "missing key(s) tau" in _bad(tmp_path, tau=None)
    assert "W_rec must be square" in _bad(tmp_path, W_rec=np.zeros((5, 4)))
    assert "W_in must have shape" in _bad(tmp_path, W_in=np.zeros((4, 4)))
    assert "b must have shape" in _bad(tmp_path, b=np.zeros(6))
    assert "non-finite" in _bad(tmp_path, W_rec=np.full((5, 5), np.nan))
    assert "tau must be > 0" in _bad(tmp_path, tau=np.array([0.01, 0.0, 0.01, 0.01, 0.01]))
    assert "dt = " in _bad(tmp_path, dt=np.array(-0.001))
    assert "ordered" in _bad(tmp_path, bands=np.array([[8, 13], [4, 7], [14, 29], [30, 50.0]]))
    assert "Nyquist" in _bad(tmp_path, bands=np.array([[4, 7], [8, 13], [14, 29], [30, 900.0]]))
    assert "mode_names" in _bad(tmp_path, mode_names=np.array(["a", "b"]))
    assert "form" in _bad(tmp_path, form=np.array("spiking"))


def test_truncated_and_missing_files(tmp_path, hand_network):
    path = save_network(hand_network, tmp_path / "n.npz")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(NetworkFileError, match="not a readable .npz"):
        load_network(path)
    with pytest.raises(NetworkFileError, match="no such file"):
        load_network(tmp_path / "absent.npz")
