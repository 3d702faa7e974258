"""Read what ``train``, ``evaluate`` and ``analyze`` left in a run directory, tolerantly.

The report never trusts that every file or column exists: :class:`Table` returns NaN columns
for missing names and :class:`Ensemble` records which inputs were missing, so a figure or a claim
that needs them is replaced by a note naming what was absent.
"""

from __future__ import annotations

import builtins
import csv
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rhythmswitch.config import ConfigError, RunConfig, TaskConfig
from rhythmswitch.network import Network, NetworkFileError

log = logging.getLogger(__name__)

TRUE = {"true", "1", "yes", "t"}


class MissingData(RuntimeError):
    """A figure or claim needs an input the run directory does not hold."""


@dataclass(frozen=True)
class Table:
    """A CSV as columns of strings; typed access by name.  ``path`` is None when absent."""

    path: Path | None
    columns: dict[str, np.ndarray]

    @classmethod
    def read(cls, path: Path) -> Table:
        if not path.exists():
            return cls(None, {})
        try:
            with open(path, newline="") as fh:
                rows = list(csv.reader(fh))
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            log.warning("cannot read %s: %s", path, exc)
            return cls(None, {})
        if not rows:
            return cls(path, {})
        header, body = rows[0], rows[1:]
        cols = {
            name: np.array([r[i] if i < len(r) else "" for r in body], dtype=object)
            for i, name in enumerate(header)
        }
        return cls(path, cols)

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0

    def has(self, *names: str) -> bool:
        return all(n in self.columns for n in names)

    def str(self, name: str) -> np.ndarray:
        if name not in self.columns:
            raise MissingData(f"{self._where()} has no column {name!r}")
        return self.columns[name].astype(str)

    def float(self, name: builtins.str) -> np.ndarray:
        """Column as float64; empty or unparsable cells become NaN."""
        raw = self.str(name)
        out = np.full(raw.shape, np.nan)
        for i, s in enumerate(raw):
            try:
                out[i] = float(s)
            except ValueError:
                if s.strip().lower() in TRUE:
                    out[i] = 1.0
                elif s.strip().lower() in {"false", "0", "no", "f"}:
                    out[i] = 0.0
        return out

    def bool(self, name: builtins.str) -> np.ndarray:
        """Column as booleans (true/1/yes); anything else False."""
        return np.array([s.strip().lower() in TRUE for s in self.str(name)], dtype=bool)

    def where(self, mask: np.ndarray) -> Table:
        return Table(self.path, {k: v[mask] for k, v in self.columns.items()})

    def for_network(self, name: builtins.str) -> Table:
        return self.where(self.str("network") == name)

    def _where(self) -> builtins.str:
        return str(self.path) if self.path is not None else "a missing table"


@dataclass
class Ensemble:
    """One run directory: config, tables and per-network arrays, loaded lazily where large."""

    run_dir: Path
    config: RunConfig | None
    config_text: str
    networks: Table
    neurons: Table
    pairs: Table
    fixed_points: Table
    eta: Table
    evaluation: Table
    training: Table
    summary: dict
    degeneracy: dict
    mechanisms: Table
    mode_names: tuple[str, ...]
    _arrays: dict[str, dict[str, np.ndarray] | None] = field(default_factory=dict)

    @property
    def analysis_dir(self) -> Path:
        return self.run_dir / "analysis"

    @property
    def name(self) -> str:
        return self.run_dir.resolve().name

    @property
    def task(self) -> TaskConfig | None:
        return self.config.task if self.config is not None else None

    def network_names(self) -> list[str]:
        if self.networks.has("network"):
            return [str(n) for n in self.networks.str("network")]
        return sorted(p.stem for p in (self.run_dir / "networks").glob("*.npz"))

    def converged_mask(self) -> np.ndarray:
        """Per row of networks.csv: converged (METHOD section 6 criterion) as read."""
        if not self.networks.has("converged"):
            return np.zeros(len(self.networks), dtype=bool)
        return self.networks.bool("converged")

    def analysable_mask(self) -> np.ndarray:
        """Rows of networks.csv that were analysed (no refusal reason for the whole file)."""
        n = len(self.networks)
        if n == 0:
            return np.zeros(0, dtype=bool)
        ok = np.ones(n, dtype=bool)
        mode = self.mode_names[0] if self.mode_names else None
        if mode is not None and self.networks.has(f"rho_tau_amp_{mode}"):
            ok &= np.isfinite(self.networks.float(f"rho_tau_amp_{mode}"))
        return ok

    def arrays(self, network: str) -> dict[str, np.ndarray]:
        """``analysis/arrays/<network>.npz`` as a dict; MissingData if absent or unreadable."""
        if network not in self._arrays:
            path = self.analysis_dir / "arrays" / f"{network}.npz"
            try:
                with np.load(path, allow_pickle=False) as data:
                    self._arrays[network] = {k: data[k] for k in data.files}
            except (OSError, ValueError, EOFError) as exc:
                log.warning("cannot read %s: %s", path, exc)
                self._arrays[network] = None
        got = self._arrays[network]
        if got is None:
            raise MissingData(f"{self.analysis_dir / 'arrays' / (network + '.npz')} is missing")
        return got

    def load_network(self, network: str) -> Network:
        from rhythmswitch.network import load_network

        path = self.run_dir / "networks" / f"{network}.npz"
        try:
            return load_network(path)
        except NetworkFileError as exc:
            raise MissingData(str(exc)) from exc

    def representative(self) -> str:
        """The representative network, by the documented rule (see :func:`pick_representative`)."""
        return pick_representative(self)


def pick_representative(ens: Ensemble) -> str:
    """The first converged network in name order; if none converged, the network with the
    highest minimum in-band ratio (networks.csv, else evaluation_summary.csv); else the first
    analysed network.

    Raises MissingData when the run has no analysed network.
    """
    names = ens.network_names()
    if not names:
        raise MissingData(f"{ens.run_dir} has no analysed network")
    ok = ens.analysable_mask() if len(ens.networks) else np.ones(len(names), dtype=bool)
    conv = ens.converged_mask() if len(ens.networks) else np.zeros(len(names), dtype=bool)
    order = np.argsort(names, kind="stable")
    for i in order:
        if conv[i] and ok[i]:
            return names[i]
    for ev in (ens.networks, ens.evaluation):
        if not ev.has("network", "min_ratio"):
            continue
        ratios = dict(zip(ev.str("network"), ev.float("min_ratio"), strict=True))
        scored = [(ratios.get(names[i], np.nan), names[i]) for i in order if ok[i]]
        scored = [s for s in scored if np.isfinite(s[0])]
        if scored:
            return max(scored, key=lambda s: s[0])[1]
    for i in order:
        if ok[i]:
            return names[i]
    raise MissingData(f"{ens.run_dir}: no network could be analysed")


def _read_json(path: Path) -> dict:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        log.warning("cannot read %s: %s", path, exc)
        return {}
    return data if isinstance(data, dict) else {"value": data}


def _mode_names(cfg: RunConfig | None, networks: Table, run_dir: Path) -> tuple[str, ...]:
    if cfg is not None:
        return tuple(cfg.task.mode_names)
    prefix = "rho_tau_amp_"
    names = tuple(c[len(prefix) :] for c in networks.columns if c.startswith(prefix))
    if names:
        return names
    for path in sorted((run_dir / "networks").glob("*.npz")):
        try:
            with np.load(path, allow_pickle=False) as data:
                return tuple(str(x) for x in data["mode_names"].tolist())
        except (OSError, ValueError, KeyError, EOFError):
            continue
    return ()


def load_ensemble(run_dir: str | Path) -> Ensemble:
    """Everything the report reads from one run directory (never raises on missing files)."""
    run_dir = Path(run_dir)
    cfg_path = run_dir / "config.toml"
    cfg, cfg_text = None, ""
    if cfg_path.exists():
        cfg_text = cfg_path.read_text()
        try:
            cfg = RunConfig.load(cfg_path)
        except (ConfigError, TypeError, OSError) as exc:
            log.warning("%s: %s", cfg_path, exc)
    an = run_dir / "analysis"
    networks = Table.read(an / "networks.csv")
    return Ensemble(
        run_dir=run_dir,
        config=cfg,
        config_text=cfg_text,
        networks=networks,
        neurons=Table.read(an / "neurons.csv"),
        pairs=Table.read(an / "pairs.csv"),
        fixed_points=Table.read(an / "fixed_points.csv"),
        eta=Table.read(an / "eta.csv"),
        evaluation=Table.read(run_dir / "evaluation_summary.csv"),
        training=Table.read(run_dir / "training_summary.csv"),
        summary=_read_json(an / "summary.json"),
        degeneracy=_read_json(an / "degeneracy.json"),
        mechanisms=Table.read(an / "mechanisms.csv"),
        mode_names=_mode_names(cfg, networks, run_dir),
    )


def first_key(arrays: dict[str, np.ndarray], *candidates: str) -> np.ndarray:
    """The first of ``candidates`` present in ``arrays``; MissingData naming them all if none."""
    for c in candidates:
        if c in arrays:
            return arrays[c]
    raise MissingData(f"the analysis arrays hold none of {', '.join(candidates)}")
