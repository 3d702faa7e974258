"""Hand-built networks whose switching mechanism is known by construction.

Each builder returns a :class:`Synthetic`: a :class:`~rhythmswitch.network.Network` (METHOD
section 2 equations, ``current`` form, dt = 1 ms, the paper's four bands and mode names) plus the
unit groups it was built from and the mechanism every unordered pair of modes uses *by
construction*.  They are the ground truth on which :mod:`rhythmswitch.mechanisms` is validated
(``tests/test_synthetic.py`` checks by simulation that each one does what is claimed here before
trusting it).

Building blocks (all exact consequences of the update rule
``x <- (1 - a) x + a (W_in u + b + W_rec tanh x)``):

- **Rotation oscillator.**  Two groups u, v with group-averaged weights
  ``s [[cos th, -sin th], [sin th, cos th]]`` (:data:`ROT_GAIN` s = 2.5, :data:`ROT_ANGLE`
  th = 1 rad).  At the origin it is an unstable focus (s cos th > 1) and the state settles on a
  limit cycle whose frequency is almost proportional to a = dt / tau: f ~ :data:`HZ_PER_A` * a
  (measured: a = 0.0245 -> 5.5 Hz, 0.045 -> 10.5 Hz, 0.09 -> 20 Hz, 0.18 -> 37 Hz).  Short time
  constants give fast rhythms, as in the paper.  Within a group all units are identical, so the
  group behaves as one unit (differences between members decay with factor 1 - a per step).
- **Mode memory.**  A unit with self-weight 2 and no bias is bistable at x = +-1.915
  (r = +-:data:`R_ON`).  A cue pulse of +-:data:`CUE` (input weight) sets it; nothing else drives
  it, so it holds its state until the next pulse.
- **Gate.**  A bias ``c/2 (R_ON - r_mem)`` added to a group is 0 while its memory is on and ~c
  while it is off: c = :data:`GATE` saturates the group (tanh' ~ 0), so it stops oscillating.
- **Followers.**  Feed-forward units driven by ``g_i r_source`` with heterogeneous gains g_i, so
  their amplitude rank is the same in every mode (active sets do not turn over by accident).

The three networks (N = 100 each):

- :func:`turnover_network`: four disjoint rotation oscillators (24 units, one per mode, tau
  matched to the band) gated by a four-unit winner-take-all mode memory.  Claimed, every pair:
  turnover only (the active populations are disjoint; no unit oscillates in two modes, so no
  baseline or phase change of a shared population exists).
- :func:`baseline_network`: one rotation oscillator (2 x 5 units, tau = 5 ms) plus 89 followers,
  whose operating point a one-unit memory moves between two unstable foci: x* = (0, 0)
  (~40 Hz, gamma) and x* = (0.7, 0.7) (~22 Hz, beta); the followers' operating point moves
  with it.  The theta and alpha cues set the same memory state as beta (so those segments
  carry beta, not their own band).  Claimed: beta-gamma baseline only; alpha-beta no mechanism
  (identical dynamics).  In beta mode z's in-band ratio is only ~0.5: the off-centre cycle has
  a strong second harmonic (~44 Hz).
- :func:`phase_network`: two identical uncoupled alpha oscillators O1, O2 and two identical
  beta oscillators G1, G2 (2 units each), and 92 followers, each driven by one of O1/O2 and one
  of G1/G2 with the same gain.  The cue pulse drives the copies with equal or opposite inputs;
  by the odd symmetry of tanh (b = 0) they then run in phase or in anti-phase, exactly up to
  the residue of the previous state left after the 100-step pulse ((1 - a)^100 < 1 % for the
  alpha copies; uncoupled copies keep whatever phase offset they start with).  Theta
  and alpha cues: O in phase, G anti-phase (z carries alpha, beta cancels); beta and gamma
  cues: the reverse.  Every unit keeps both rhythms in every mode.  Claimed: alpha-beta phase
  only; beta-gamma no mechanism (identical dynamics).  Theta (gamma) segments carry alpha
  (beta), so pairs judged in the theta band are not claimed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np

from rhythmswitch.config import MODE_NAMES, PAPER_BANDS_HZ
from rhythmswitch.network import Network

DT_S = 0.001
ROT_GAIN = 2.5
ROT_ANGLE = 1.0
#: limit-cycle frequency per unit of a for the rotation oscillator (measured, see docstring)
HZ_PER_A = 221.0
#: memory: bistable at x = +-X_ON with self-weight 2
MEM_SELF = 2.0
CUE = 5.0
GATE = 5.0
MECHANISMS = ("turnover", "baseline", "phase")


def _memory_fixed_point(w_self: float = MEM_SELF) -> float:
    x = 2.0
    for _ in range(200):  # fixed-point iteration of x = w tanh(x); contracts for w = 2
        x = w_self * np.tanh(x)
    return float(x)


X_ON = _memory_fixed_point()
R_ON = float(np.tanh(X_ON))


def rotation(gain: float = ROT_GAIN, angle: float = ROT_ANGLE) -> np.ndarray:
    """The 2 x 2 group weights s [[cos th, -sin th], [sin th, cos th]]."""
    c, s = np.cos(angle), np.sin(angle)
    return gain * np.array([[c, -s], [s, c]])


def a_for_frequency(freq_hz: float) -> float:
    """Leak a = dt / tau of a rotation oscillator whose limit cycle runs near ``freq_hz``."""
    return float(freq_hz) / HZ_PER_A


@dataclass(frozen=True)
class Synthetic:
    """A hand-built network and what it is known to do.

    ``groups`` maps a group name to its unit indices; ``truth`` maps the unordered pairs of
    mode names (sorted by mode index) that the construction makes a claim about to the set of
    mechanisms they use by construction (pairs not listed are not claimed);
    ``demo_pair`` is the pair the construction is about.
    """

    network: Network
    groups: dict[str, np.ndarray]
    truth: dict[tuple[str, str], frozenset[str]]
    demo_pair: tuple[str, str]
    notes: str = ""
    params: dict = field(default_factory=dict)


class _Builder:
    """Accumulates units (groups) and weights of a network under construction."""

    def __init__(self, n_modes: int) -> None:
        self.n_modes = n_modes
        self.groups: dict[str, np.ndarray] = {}
        self.a: list[float] = []
        self.n = 0

    def add(self, name: str, size: int, a: float) -> np.ndarray:
        idx = np.arange(self.n, self.n + size)
        self.groups[name] = idx
        self.a += [a] * size
        self.n += size
        return idx

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return np.zeros((self.n, self.n)), np.zeros((self.n, self.n_modes)), np.zeros(self.n)


def _connect(w: np.ndarray, to: np.ndarray, frm: np.ndarray, weight: float) -> None:
    """Group-averaged all-to-all block: each unit of ``to`` gets weight / |frm| from each of frm."""
    w[np.ix_(to, frm)] += weight / len(frm)


def _oscillator(w: np.ndarray, u: np.ndarray, v: np.ndarray, block: np.ndarray) -> None:
    for (gi, gj), val in np.ndenumerate(block):
        _connect(w, (u, v)[gi], (u, v)[gj], float(val))


def _network(b: _Builder, w: np.ndarray, w_in: np.ndarray, bias: np.ndarray, name: str) -> Network:
    return Network.from_a(
        W_rec=w,
        W_in=w_in,
        b=bias,
        a=np.asarray(b.a),
        dt_s=DT_S,
        bands_hz=np.asarray(PAPER_BANDS_HZ, dtype=np.float64),
        mode_names=MODE_NAMES,
        name=name,
    )


def _pairs() -> list[tuple[str, str]]:
    return [(MODE_NAMES[i], MODE_NAMES[j]) for i, j in combinations(range(len(MODE_NAMES)), 2)]


# -- turnover ------------------------------------------------------------------------------

#: target frequency of each mode's oscillator in the turnover network (inside the paper bands)
TURNOVER_FREQS_HZ = (5.5, 10.5, 20.0, 38.0)


def turnover_network(pop_size: int = 24, name: str = "synthetic_turnover") -> Synthetic:
    """Four disjoint gated oscillators, one per mode; a winner-take-all memory picks one.

    Units: 4 memory units, then for each mode a u group and a v group of ``pop_size // 2``.
    Cue channel m sets memory m on (+CUE) and every other memory unit off (-CUE).  Memory m
    gates oscillator m: while it is off the oscillator gets a bias of ~GATE and saturates.
    """
    m = len(MODE_NAMES)
    half = pop_size // 2
    bld = _Builder(m)
    mem = bld.add("memory", m, 0.1)
    pops = []
    for k, mode in enumerate(MODE_NAMES):
        a = a_for_frequency(TURNOVER_FREQS_HZ[k])
        u = bld.add(f"{mode}_u", half, a)
        v = bld.add(f"{mode}_v", half, a)
        pops.append((u, v))
    w, w_in, bias = bld.arrays()
    for k in range(m):
        w[mem[k], mem[k]] = MEM_SELF
        w_in[mem, k] = -CUE
        w_in[mem[k], k] = CUE
        u, v = pops[k]
        _oscillator(w, u, v, rotation())
        pop = np.concatenate([u, v])
        w[pop, mem[k]] = -GATE / 2  # gate = GATE/2 (R_ON - r_mem)
        bias[pop] = GATE / 2 * R_ON
    for k, mode in enumerate(MODE_NAMES):
        bld.groups[mode] = np.concatenate(pops[k])
    net = _network(bld, w, w_in, bias, name)
    truth = {p: frozenset({"turnover"}) for p in _pairs()}
    return Synthetic(
        network=net,
        groups=bld.groups,
        truth=truth,
        demo_pair=(MODE_NAMES[0], MODE_NAMES[3]),
        notes="disjoint gated oscillators; every pair of modes switches by turnover only",
        params={"freqs_hz": TURNOVER_FREQS_HZ},
    )


# -- baseline ------------------------------------------------------------------------------

BASELINE_CORE_A = 0.2
BASELINE_CORE_GAIN = 3.5
#: operating point (both core groups) of the beta focus and of the gamma focus
BASELINE_X_BETA = 0.7
BASELINE_X_GAMMA = 0.0
#: followers' operating point in each memory state
BASELINE_FOLLOW_X_BETA = 0.8
BASELINE_FOLLOW_X_GAMMA = 0.0


def _cycle_mean_rate(block: np.ndarray, a: float, c: np.ndarray, x0: np.ndarray) -> np.ndarray:
    """Mean rate of a 2-unit core on its attractor, from a short NumPy simulation."""
    x = x0 + np.array([0.01, 0.0])
    acc = np.zeros(2)
    n_settle, n_avg = 3000, 5000
    for t in range(n_settle + n_avg):
        x = (1 - a) * x + a * (block @ np.tanh(x) + c)
        if t >= n_settle:
            acc += np.tanh(x)
    return acc / n_avg


def baseline_network(
    core_size: int = 5, n_followers: int = 89, name: str = "synthetic_baseline"
) -> Synthetic:
    """One oscillator whose operating point a memory moves between a beta and a gamma focus.

    Units: 1 memory unit, core u and v groups of ``core_size``, ``n_followers`` followers.
    The core's bias is ``c(x*) = x* - W tanh(x*)`` so that x* = (X, X) is a fixed point;
    X = BASELINE_X_BETA while the memory is on (theta, alpha, beta cues) and BASELINE_X_GAMMA
    while it is off (gamma cue).  Linearised there, the focus is unstable in both states and
    its limit cycle runs at ~22 Hz (beta) and ~40 Hz (gamma).  Follower i is driven by
    g_i * mean rate of the u group, g_i evenly spaced on [0.2, 0.8], with a bias that puts its
    mean operating point at BASELINE_FOLLOW_X_* in each state.
    """
    bld = _Builder(len(MODE_NAMES))
    mem = bld.add("memory", 1, 0.1)
    u = bld.add("core_u", core_size, BASELINE_CORE_A)
    v = bld.add("core_v", core_size, BASELINE_CORE_A)
    fol = bld.add("followers", n_followers, 0.3)
    w, w_in, bias = bld.arrays()
    w[mem, mem] = MEM_SELF
    w_in[mem, :] = CUE
    w_in[mem, MODE_NAMES.index("gamma")] = -CUE
    block = rotation(BASELINE_CORE_GAIN)
    _oscillator(w, u, v, block)

    def core_bias(x: float) -> np.ndarray:
        xs = np.array([x, x])
        return xs - block @ np.tanh(xs)

    c_on, c_off = core_bias(BASELINE_X_BETA), core_bias(BASELINE_X_GAMMA)
    mean_on = _cycle_mean_rate(block, BASELINE_CORE_A, c_on, np.full(2, BASELINE_X_BETA))
    mean_off = _cycle_mean_rate(block, BASELINE_CORE_A, c_off, np.full(2, BASELINE_X_GAMMA))
    gains = np.linspace(0.2, 0.8, n_followers)
    w[np.ix_(fol, u)] = gains[:, None] / core_size
    f_on = BASELINE_FOLLOW_X_BETA - gains * mean_on[0]
    f_off = BASELINE_FOLLOW_X_GAMMA - gains * mean_off[0]
    # bias = mid + k * r_mem with r_mem = +R_ON (on) or -R_ON (off)
    for grp, on, off in ((u, c_on[0], c_off[0]), (v, c_on[1], c_off[1]), (fol, f_on, f_off)):
        bias[grp] = (on + off) / 2
        w[grp, mem[0]] = (on - off) / (2 * R_ON)
    bld.groups["core"] = np.concatenate([u, v])
    net = _network(bld, w, w_in, bias, name)
    # theta and alpha cues set the beta state: those segments carry no rhythm in their own
    # band, so only the pairs among beta-producing segments and gamma are claimed
    truth = {
        ("beta", "gamma"): frozenset({"baseline"}),
        ("alpha", "beta"): frozenset(),  # identical dynamics
    }
    return Synthetic(
        network=net,
        groups=bld.groups,
        truth=truth,
        demo_pair=("beta", "gamma"),
        notes="operating point moved between a beta and a gamma focus; pairs with gamma: "
        "baseline only; theta, alpha, beta share one state (no mechanism)",
        params={"x_beta": BASELINE_X_BETA, "x_gamma": BASELINE_X_GAMMA},
    )


# -- phase ---------------------------------------------------------------------------------

PHASE_FREQS_HZ = (10.5, 20.0)  # the alpha and beta oscillators
PHASE_FOLLOW_A = 0.3


def phase_network(n_per_group: int = 23, name: str = "synthetic_phase") -> Synthetic:
    """Two alpha and two beta oscillator copies whose relative sign the cue sets.

    Units: O1, O2 (alpha, 2 units each), G1, G2 (beta), then four follower groups
    (O1, G1), (O1, G2), (O2, G1), (O2, G2) of ``n_per_group`` units each; follower j of every
    group has drive g_j (r_O + r_G) from the u units of its two sources, g_j evenly spaced on
    [0.1, 0.6].  Cue channels theta and alpha push O1 and O2 with +CUE and G1, G2 with +CUE and
    -CUE; beta and gamma cues do the reverse.
    """
    bld = _Builder(len(MODE_NAMES))
    osc = {}
    for label, f in (("O", PHASE_FREQS_HZ[0]), ("G", PHASE_FREQS_HZ[1])):
        for copy in (1, 2):
            a = a_for_frequency(f)
            osc[f"{label}{copy}"] = (
                bld.add(f"{label}{copy}_u", 1, a),
                bld.add(f"{label}{copy}_v", 1, a),
            )
    fgroups = {}
    for o in ("O1", "O2"):
        for g in ("G1", "G2"):
            fgroups[(o, g)] = bld.add(f"follow_{o}{g}", n_per_group, PHASE_FOLLOW_A)
    w, w_in, bias = bld.arrays()
    for u, v in osc.values():
        _oscillator(w, u, v, rotation())
    gains = np.linspace(0.1, 0.6, n_per_group)
    for (o, g), idx in fgroups.items():
        w[idx, osc[o][0][0]] = gains
        w[idx, osc[g][0][0]] = gains
    sign = {
        # channel: (O1, O2, G1, G2)
        "theta": (1, 1, 1, -1),
        "alpha": (1, 1, 1, -1),
        "beta": (1, -1, 1, 1),
        "gamma": (1, -1, 1, 1),
    }
    for ch, signs in sign.items():
        k = MODE_NAMES.index(ch)
        for key, s in zip(("O1", "O2", "G1", "G2"), signs, strict=True):
            for idx in osc[key]:
                w_in[idx, k] = s * CUE
    bld.groups["followers"] = np.concatenate(list(fgroups.values()))
    bld.groups["alpha_oscillators"] = np.concatenate([*osc["O1"], *osc["O2"]])
    bld.groups["beta_oscillators"] = np.concatenate([*osc["G1"], *osc["G2"]])
    net = _network(bld, w, w_in, bias, name)
    # theta (gamma) segments run the alpha (beta) state: only pairs judged in their own band
    truth = {
        ("alpha", "beta"): frozenset({"phase"}),
        ("beta", "gamma"): frozenset(),  # identical dynamics, judged in the beta and gamma bands
    }
    return Synthetic(
        network=net,
        groups=bld.groups,
        truth=truth,
        demo_pair=("alpha", "beta"),
        notes="same units carry alpha and beta in every mode; the cue flips which rhythm's "
        "copies run in anti-phase and cancel in z; pairs across {theta, alpha} x {beta, gamma}: "
        "phase only",
        params={"freqs_hz": PHASE_FREQS_HZ},
    )


BUILDERS: dict[str, Callable[[], Synthetic]] = {
    "turnover": turnover_network,
    "baseline": baseline_network,
    "phase": phase_network,
}


def all_synthetic() -> dict[str, Synthetic]:
    """Every synthetic network, by the mechanism it demonstrates."""
    return {k: f() for k, f in BUILDERS.items()}
