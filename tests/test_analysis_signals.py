"""Envelope, phase, spectra and the too-few-cycles check against signals of known form."""

import numpy as np
import pytest

from rhythmswitch.analysis.signals import (
    analytic_signal,
    butter_sos,
    cycle_warning,
    cycles_in_segment,
    envelope_phase,
)
from rhythmswitch.analysis.spectra import spectrum_of_segment
from rhythmswitch.loss import ratio_numpy

FS = 1000.0


def test_envelope_and_phase_of_sinusoids():
    t = np.arange(6000) / FS
    amps = np.array([0.2, 0.7, 1.3])
    phases = np.array([0.0, 1.0, -2.0])
    x_tn = amps * np.sin(2 * np.pi * 10.0 * t[:, None] + phases)
    env, phi = envelope_phase(x_tn, (8.0, 13.0), FS)
    mid = slice(1000, 5000)  # away from the filter's edges
    np.testing.assert_allclose(env[mid].mean(axis=0), amps, rtol=0.01)
    # sin(w t + p) = cos(w t + p - pi/2): the analytic phase is w t + p - pi/2
    expected = 2 * np.pi * 10.0 * t[mid, None] + phases - np.pi / 2
    err = np.angle(np.exp(1j * (phi[mid] - expected)))
    assert np.max(np.abs(err)) < 0.02


def test_out_of_band_sinusoid_is_removed():
    t = np.arange(6000) / FS
    x = np.sin(2 * np.pi * 40.0 * t)[:, None]
    z = analytic_signal(x, (4.0, 7.0), FS)
    assert np.abs(z[1000:5000]).mean() < 1e-3


def test_band_edges_at_zero_and_nyquist_and_invalid_bands():
    assert butter_sos((0.0, 10.0), FS).shape[1] == 6  # low-pass
    assert butter_sos((100.0, 500.0), FS).shape[1] == 6  # high-pass (high = Nyquist)
    with pytest.raises(ValueError, match="band_hz"):
        butter_sos((7.0, 4.0), FS)
    with pytest.raises(ValueError, match="Nyquist"):
        butter_sos((0.0, 500.0), FS)


def test_cycles_in_segment_and_warning():
    assert cycles_in_segment((4.0, 7.0), 7500, FS) == pytest.approx(30.0)
    assert cycles_in_segment((0.0, 3.0), 1000, FS) == pytest.approx(3.0)
    assert cycle_warning("theta", (4.0, 7.0), 7500, FS) == ""
    msg = cycle_warning("theta", (4.0, 7.0), 2000, FS)
    assert "theta" in msg and "8.0 cycles" in msg


def test_spectrum_peak_and_band_ratio_of_a_sinusoid():
    n = 7500
    t = np.arange(n) / FS
    z = 0.3 * np.sin(2 * np.pi * 12.0 * t) + 0.01 * np.sin(2 * np.pi * 35.0 * t)
    bands = np.array([[4, 7], [8, 13], [14, 29], [30, 50]], float)
    s = spectrum_of_segment(z, FS, bands)
    assert s.peak_hz == pytest.approx(12.0)
    for k, band in enumerate(bands):
        assert s.band_ratio[k] == pytest.approx(ratio_numpy(z, FS, tuple(band)), abs=1e-12)
    # Parseval: power of a sinusoid of amplitude A is A^2 / 2
    assert s.band_power[1] == pytest.approx(0.3**2 / 2, rel=1e-3)
    assert s.z_sd == pytest.approx(np.std(z))
    assert s.freqs_hz[np.argmax(s.psd)] == pytest.approx(12.0, abs=0.5)


def test_constant_signal_has_no_peak():
    s = spectrum_of_segment(np.full(1000, 0.5), FS, np.array([[4.0, 7.0]]))
    assert np.isnan(s.peak_hz) and np.isnan(s.band_ratio[0])
