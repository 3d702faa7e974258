"""rhythmswitch: train and dissect rhythm-switching RNNs with learned per-neuron time constants.

The Python API (see the README)::

    import rhythmswitch as rs
    cfg = rs.get_preset("tiny")
    rs.train_run(cfg, "runs/demo")                  # DIR/networks/*.npz, training.csv
    net = rs.load_network("runs/demo/networks/net043.npz")
    traj = rs.simulate(net, rs.sequence_protocol(rs.task_config_for_network(net)).u_tm)
    ev = rs.evaluate_network(net)                   # ratios per protocol / mode, converged flag
"""

from rhythmswitch.devices import configure_host_devices

configure_host_devices()  # before JAX starts: one host device per core (see devices.py)

from rhythmswitch.config import (  # noqa: E402
    ConfigError,
    ModelConfig,
    RunConfig,
    TaskConfig,
    TrainConfig,
    apply_overrides,
    get_preset,
)
from rhythmswitch.evaluate import Evaluation, evaluate_network  # noqa: E402
from rhythmswitch.model import Trajectory, simulate  # noqa: E402
from rhythmswitch.network import Network, NetworkFileError, load_network, save_network  # noqa: E402
from rhythmswitch.runs import evaluate_run, load_run_networks, train_run  # noqa: E402
from rhythmswitch.task import (  # noqa: E402
    Protocol,
    mode_sequence_protocol,
    sequence_protocol,
    task_config_for_network,
    transition_protocols,
)
from rhythmswitch.train import TrainResult, train_ensemble  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "Evaluation",
    "ModelConfig",
    "Network",
    "NetworkFileError",
    "Protocol",
    "RunConfig",
    "TaskConfig",
    "TrainConfig",
    "TrainResult",
    "Trajectory",
    "apply_overrides",
    "evaluate_network",
    "evaluate_run",
    "get_preset",
    "load_network",
    "load_run_networks",
    "mode_sequence_protocol",
    "save_network",
    "sequence_protocol",
    "simulate",
    "task_config_for_network",
    "train_ensemble",
    "train_run",
    "transition_protocols",
]
