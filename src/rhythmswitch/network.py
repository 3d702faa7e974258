"""The network file: the exchange format of METHOD section 9.

One trained network is one ``.npz`` with float arrays ``W_rec (N, N)``, ``W_in (N, M)``,
``b (N,)``, ``tau (N,)`` in seconds, scalar ``dt`` in seconds, ``bands (M, 2)`` in Hz,
``mode_names (M,)`` strings and optionally ``form`` (``"current"``, the default, or ``"rate"``).
Extra keys are allowed and ignored.  Any tool (PyTorch, Keras, ...) can write one; every analysis
needs nothing but this file.

Frozen neurons.  Under the paper's projection ``a = dt/tau >= 0`` a neuron can reach ``a = 0``
exactly (tau infinite: the neuron keeps its initial state forever).  The file stores tau, which
must be finite, so on writing ``a`` is floored at :data:`A_FLOOR` (``tau <= dt / A_FLOOR``,
1000 s at dt = 1 ms).  Over the longest protocol here (32,100 steps) such a neuron's state moves
by at most ~3 % of the distance to its drive, i.e. it is frozen for every practical purpose, and
every analysis treats it like any other neuron (its Jacobian row is ``1 - a`` on the diagonal).
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rhythmswitch.config import ConfigError, validate_bands
from rhythmswitch.store import atomic_write_bytes, npz_bytes

A_FLOOR = 1e-6
REQUIRED_KEYS = ("W_rec", "W_in", "b", "tau", "dt", "bands", "mode_names")
FORMS = ("current", "rate")


class NetworkFileError(ValueError):
    """A network file (or array set) is invalid; the message names the file and the problem."""


@dataclass(frozen=True, eq=False)
class Network:
    """A trained network in physical units (NumPy, float64 on load).

    ``W_rec[i, j]`` is the weight from unit j to unit i.  ``tau_s`` in seconds, ``dt_s`` in
    seconds, ``bands_hz`` as [low, high) Hz per mode.
    """

    W_rec: np.ndarray
    W_in: np.ndarray
    b: np.ndarray
    tau_s: np.ndarray
    dt_s: float
    bands_hz: np.ndarray
    mode_names: tuple[str, ...]
    form: str = "current"
    name: str = "network"
    extras: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        validate_arrays(
            {
                "W_rec": self.W_rec,
                "W_in": self.W_in,
                "b": self.b,
                "tau": self.tau_s,
                "dt": self.dt_s,
                "bands": self.bands_hz,
                "mode_names": np.asarray(self.mode_names),
                "form": self.form,
            },
            source=self.name,
        )

    @property
    def n_units(self) -> int:
        return int(self.W_rec.shape[0])

    @property
    def n_modes(self) -> int:
        return int(self.W_in.shape[1])

    @property
    def a(self) -> np.ndarray:
        """Per-neuron leak a_i = dt / tau_i."""
        return self.dt_s / self.tau_s

    @property
    def fs_hz(self) -> float:
        return 1.0 / self.dt_s

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {
            "W_rec": np.asarray(self.W_rec, dtype=np.float64),
            "W_in": np.asarray(self.W_in, dtype=np.float64),
            "b": np.asarray(self.b, dtype=np.float64),
            "tau": np.asarray(self.tau_s, dtype=np.float64),
            "dt": np.asarray(self.dt_s, dtype=np.float64),
            "bands": np.asarray(self.bands_hz, dtype=np.float64),
            "mode_names": np.asarray(self.mode_names, dtype=str),
            "form": np.asarray(self.form, dtype=str),
        }

    @classmethod
    def from_a(
        cls,
        *,
        W_rec: np.ndarray,
        W_in: np.ndarray,
        b: np.ndarray,
        a: np.ndarray,
        dt_s: float,
        bands_hz,
        mode_names,
        form: str = "current",
        name: str = "network",
    ) -> Network:
        """Build from a = dt/tau, flooring a at :data:`A_FLOOR` (see module docstring)."""
        a = np.maximum(np.asarray(a, dtype=np.float64), A_FLOOR)
        return cls(
            W_rec=np.asarray(W_rec, dtype=np.float64),
            W_in=np.asarray(W_in, dtype=np.float64),
            b=np.asarray(b, dtype=np.float64),
            tau_s=dt_s / a,
            dt_s=float(dt_s),
            bands_hz=np.asarray(bands_hz, dtype=np.float64),
            mode_names=tuple(str(m) for m in mode_names),
            form=form,
            name=name,
        )


def validate_arrays(arrays: dict, source: str = "<arrays>") -> None:
    """Check keys, shapes, finiteness, tau > 0, dt > 0 and bands; raise NetworkFileError."""

    def bad(msg: str) -> None:
        raise NetworkFileError(f"{source}: {msg}")

    missing = [k for k in REQUIRED_KEYS if k not in arrays]
    if missing:
        bad(f"missing key(s) {', '.join(missing)} (required: {', '.join(REQUIRED_KEYS)})")
    try:
        w_rec = np.asarray(arrays["W_rec"], dtype=np.float64)
        w_in = np.asarray(arrays["W_in"], dtype=np.float64)
        b = np.asarray(arrays["b"], dtype=np.float64)
        tau = np.asarray(arrays["tau"], dtype=np.float64)
        dt = np.asarray(arrays["dt"], dtype=np.float64)
        bands = np.asarray(arrays["bands"], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        bad(f"non-numeric array: {exc}")
    names = np.asarray(arrays["mode_names"])
    if w_rec.ndim != 2 or w_rec.shape[0] != w_rec.shape[1] or w_rec.shape[0] < 1:
        bad(f"W_rec must be square (N, N) with N >= 1, got shape {w_rec.shape}")
    n = w_rec.shape[0]
    if w_in.ndim != 2 or w_in.shape[0] != n or w_in.shape[1] < 1:
        bad(f"W_in must have shape (N={n}, M), got {w_in.shape}")
    m = w_in.shape[1]
    if b.shape != (n,):
        bad(f"b must have shape ({n},), got {b.shape}")
    if tau.shape != (n,):
        bad(f"tau must have shape ({n},), got {tau.shape}")
    if dt.size != 1:
        bad(f"dt must be a scalar, got shape {dt.shape}")
    if bands.shape != (m, 2):
        bad(f"bands must have shape (M={m}, 2), got {bands.shape}")
    if names.shape != (m,):
        bad(f"mode_names must have shape ({m},), got {names.shape}")
    for key, arr in (
        ("W_rec", w_rec),
        ("W_in", w_in),
        ("b", b),
        ("tau", tau),
        ("dt", dt),
        ("bands", bands),
    ):
        if not np.all(np.isfinite(arr)):
            bad(f"{key} holds non-finite values (NaN or inf)")
    dt_s = float(dt.reshape(()))
    if dt_s <= 0:
        bad(f"dt = {dt_s} must be > 0 (seconds)")
    if np.any(tau <= 0):
        i = int(np.argmin(tau))
        bad(f"tau must be > 0 seconds; tau[{i}] = {tau[i]}")
    try:
        validate_bands("bands", bands.tolist(), dt_s)
    except ConfigError as exc:
        bad(str(exc))
    if len({str(x) for x in names.tolist()}) != m:
        bad(f"mode_names must be distinct, got {names.tolist()}")
    form = str(np.asarray(arrays.get("form", "current")))
    if form not in FORMS:
        bad(f"form = {form!r} must be one of {', '.join(FORMS)}")


def save_network(net: Network, path: str | Path) -> Path:
    """Write ``net`` to ``path`` atomically (temp file + rename)."""
    path = Path(path)
    atomic_write_bytes(path, npz_bytes(net.to_arrays()))
    return path


def load_network(path: str | Path, name: str | None = None) -> Network:
    """Load and validate a network file; raise NetworkFileError naming the file and problem."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except FileNotFoundError as exc:
        raise NetworkFileError(f"{path}: no such file") from exc
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError) as exc:
        raise NetworkFileError(
            f"{path}: not a readable .npz file ({type(exc).__name__}: {exc})"
        ) from exc
    validate_arrays(arrays, source=str(path))
    return Network(
        W_rec=np.asarray(arrays["W_rec"], dtype=np.float64),
        W_in=np.asarray(arrays["W_in"], dtype=np.float64),
        b=np.asarray(arrays["b"], dtype=np.float64),
        tau_s=np.asarray(arrays["tau"], dtype=np.float64),
        dt_s=float(np.asarray(arrays["dt"]).reshape(())),
        bands_hz=np.asarray(arrays["bands"], dtype=np.float64),
        mode_names=tuple(str(x) for x in np.asarray(arrays["mode_names"]).tolist()),
        form=str(np.asarray(arrays.get("form", "current"))),
        name=name or path.stem,
        extras={k: v for k, v in arrays.items() if k not in (*REQUIRED_KEYS, "form")},
    )


def list_network_files(run_dir: str | Path) -> list[Path]:
    return sorted((Path(run_dir) / "networks").glob("*.npz"))
