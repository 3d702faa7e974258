import json

import pytest

from rhythmswitch.config import (
    CANONICAL_BANDS_HZ,
    PRESETS,
    ConfigError,
    ModelConfig,
    RunConfig,
    TaskConfig,
    TrainConfig,
    apply_overrides,
    get_preset,
)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_round_trip_toml_and_json(name, tmp_path):
    cfg = get_preset(name)
    for suffix in (".toml", ".json"):
        path = tmp_path / f"config{suffix}"
        cfg.save(path)
        assert RunConfig.load(path) == cfg


def test_paper_preset_is_method_section_5():
    cfg = get_preset("paper")
    assert cfg.train.batch_size == 50 and cfg.train.learning_rate == 1e-4
    assert (
        cfg.train.clip_norm == 1.0 and cfg.train.max_iters == 50_000 and cfg.train.goal_loss == 1e-6
    )
    assert cfg.task.trial_steps == 13_600
    assert cfg.task.bands_hz == ((4, 7), (8, 13), (14, 29), (30, 50))
    assert cfg.model.n_units == 100 and cfg.model.tau_init_s == 0.05 and cfg.model.sigma == 0.1
    assert get_preset("canonical").task.bands_hz == CANONICAL_BANDS_HZ


def test_overrides_apply_and_type_check():
    cfg = apply_overrides(
        get_preset("paper"),
        [
            "train.batch_size=16",
            "model.tau_init=loguniform",
            "window_steps=2000",
            "task.bands_hz=canonical",
            "model.tau_lo_s=5e-3",
            "train.curriculum=[[500, 10], [1000, 5, 1.5]]",
            "seed=7",
        ],
    )
    assert cfg.train.batch_size == 16 and cfg.model.tau_init == "loguniform"
    assert cfg.task.window_steps == 2000 and cfg.task.bands_hz == CANONICAL_BANDS_HZ
    assert cfg.train.curriculum == ((500, 10), (1000, 5, 1.5)) and cfg.seed == 7
    assert isinstance(cfg.model.tau_lo_s, float)


@pytest.mark.parametrize(
    ("item", "needle"),
    [
        ("train.batch_size=x", "train.batch_size"),
        ("train.batch_size=0", ">= 1"),
        ("model.n_units=0", "model.n_units"),
        ("foo.bar=1", "section"),
        ("model.nope=1", "not a known setting"),
        ("nope=1", "not a known setting"),
        ("model.form=spiking", "'current', 'rate'"),
        ("task.dt_s=0", "task.dt_s"),
        ("task.bands_hz=[[4, 8], [7, 13], [14, 29], [30, 50]]", "non-overlapping"),
        ("task.bands_hz=[[8, 13], [4, 7], [14, 29], [30, 50]]", "ordered"),
        ("task.bands_hz=[[4, 7], [8, 13], [14, 29], [30, 600]]", "Nyquist"),
        ("model.train_tau=3", "true or false"),
        ("n_networks=0", "n_networks"),
        ("batch_size", "key=value"),
        ("train.curriculum=[[500]]", "train.curriculum[0]"),
        ("train.curriculum=[[500, 10], [1000, 5, -1]]", "train.curriculum[1]"),
        ("train.curriculum=[[500, 10, 1.0, 2]]", "[window_steps, iters, sigma_scale]"),
        ("train.curriculum=[[500, 10.5]]", "[window_steps, iters]"),
        ("train.curriculum=[[2, 10]]", "window_steps >= 4"),
        ("train.amp_floor=-0.1", "train.amp_floor"),
        ("train.amp_floor=0.1", "both > 0 or both 0"),
        ("train.select_streams=0", "train.select_streams"),
        ("train.amp_stages=-1", "train.amp_stages"),
    ],
)
def test_bad_overrides_name_field_and_value(item, needle):
    with pytest.raises(ConfigError) as info:
        apply_overrides(get_preset("paper"), [item])
    assert needle in str(info.value)


def test_bounded_tau_minimum_below_dt_is_refused():
    with pytest.raises(ConfigError, match="tau_min_s"):
        RunConfig(model=ModelConfig(tau_param="bounded", tau_min_s=0.0005))


def test_unknown_key_in_file_is_refused(tmp_path):
    path = tmp_path / "c.json"
    data = get_preset("tiny").to_dict()
    data["model"]["wat"] = 1
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="model.wat"):
        RunConfig.load(path)


def test_direct_construction_validates():
    with pytest.raises(ConfigError, match="task.transient_steps"):
        TaskConfig(transient_steps=10, pulse_steps=100)
    with pytest.raises(ConfigError, match="train.lr_schedule"):
        TrainConfig(lr_schedule="linear")


def test_changes_from_preset_rebuild_the_config():
    from rhythmswitch.config import changes_from_preset

    assert changes_from_preset(get_preset("fast")) == []
    items = [
        "train.amp_floor=0.15",
        "train.amp_weight=0.01",
        "train.curriculum=[[500, 10, 2.0]]",
        "model.tau_init=constant",
        "task.bands_hz=[[4, 8], [8, 13], [13, 30], [30, 80]]",
        "n_networks=3",  # ensemble size and seed are not settings of a member
        "seed=7",
    ]
    cfg = apply_overrides(get_preset("fast"), items)
    changes = changes_from_preset(cfg)
    assert len(changes) == 5 and "train.amp_floor=0.15" in changes
    rebuilt = apply_overrides(get_preset("fast"), [*changes, "n_networks=3", "seed=7"])
    assert rebuilt == cfg
