"""Every section of mlkernel.toml is declared once and checked when a project opens.

The schema (config.py and each package's light ``settings`` module) and the docs table
of docs/configuration.md are the same thing; a bad value in any section stops
``mlk`` with one line naming the table and the key (exit 3); off-peak is the scheduler's.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from mlkernel.config import docs_table, load_config, render_config
from mlkernel.errors import ConfigError

DOCS = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"
BEGIN = "<!-- settings table: generated from the schema, do not edit by hand -->\n"
END = "<!-- end of settings table -->"


def _documented_table() -> str:
    text = DOCS.read_text()
    return text[text.index(BEGIN) + len(BEGIN) : text.index(END)]


def _documented_keys(table: str) -> set[str]:
    return {line.split("`")[1] for line in table.splitlines() if line.startswith("| `")}


def test_docs_table_is_the_schema() -> None:
    documented = _documented_keys(_documented_table())
    declared = _documented_keys(docs_table())
    assert documented - declared == set(), "documented, but in no schema (remove or declare)"
    assert declared - documented == set(), "declared, but not in docs/configuration.md"
    assert _documented_table() == docs_table(), (
        "docs/configuration.md's settings table differs from the schema; paste "
        "`python -c 'from mlkernel.config import docs_table; print(docs_table())'` into it"
    )


def test_every_key_has_a_meaning() -> None:
    for line in docs_table().splitlines()[2:]:
        assert line.rstrip(" |").split(" | ")[-1].strip(), line


def test_the_named_values_match_the_code() -> None:
    """The light settings modules spell values the heavy modules define."""
    from mlkernel.monitor.drift import METHODS
    from mlkernel.monitor.settings import METHOD_NAMES
    from mlkernel.pipeline.runner import EXECUTORS
    from mlkernel.pipeline.settings import EXECUTOR_NAMES
    from mlkernel.sched.cgroups import POOLS
    from mlkernel.sched.policy import SCHED_KEYS
    from mlkernel.sched.settings import POOL_NAMES, SCHED

    assert set(METHOD_NAMES) == set(METHODS)
    assert EXECUTOR_NAMES == EXECUTORS
    assert POOL_NAMES == POOLS
    assert {k.name for k in SCHED.keys} == set(SCHED_KEYS)


def test_checking_a_file_loads_no_heavy_library(tmp_path: Path) -> None:
    (tmp_path / "mlkernel.toml").write_text(FULL)
    code = (
        "import sys; from pathlib import Path; from mlkernel.config import load_config; "
        f"load_config(Path({str(tmp_path)!r})); "
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(out.stdout.split())
    heavy = {"numpy", "pyarrow", "polars", "pandas", "scipy", "sklearn", "sqlalchemy", "rich"}
    assert loaded & heavy == set()


# A file that sets every section (and nearly every key): it must open as before.
FULL = (
    render_config("full")
    + """
[[watch]]
path = "incoming/*.csv"
dataset = "train"
baseline = "dataset:train@1"
debounce = 0.5
quarantine = "incoming/failed"

[monitor]
summary_every = 3600

[monitor.drift]
drift_share = 0.3
correction = "bh"
numerical_method = "psi"
binning = "quantile"
quantile_bins = 20

[monitor.drift.columns.age]
method = "ks"
threshold = 0.01

[pipelines]
train = "pipelines/train.py:train"
executor = "inline"
workers = 2
ml_mode = false

[pipelines.params.train]
lr = 0.1
fit = { depth = 3 }

[triggers.nightly]
pipeline = "train"
cron = "0 2 * * *"
params = { lr = 0.2 }

[triggers.fresh]
pipeline = "train"
dataset = "train"

[sched]
policy = "auto"
offpeak = "22:00-06:00"
windows = ["weekdays 08-20: prod 50 / dev 40", "otherwise: batch 70"]

[sched.pools.prod]
guarantee = 30
maximum = 80

[[sched.hold]]
name = "stress"

[[sched.rules]]
pool = "batch"
user = "ci"

[data]
anything = 1
"""
)


def test_a_file_setting_every_section_opens(tmp_path: Path) -> None:
    (tmp_path / "mlkernel.toml").write_text(FULL)
    config = load_config(tmp_path)
    assert config.sections["monitor"]["drift"]["drift_share"] == 0.3
    assert config.sections["sched"]["offpeak"] == "22:00-06:00"


# (table to append, the words the one-line error must hold): one bad value per section.
BAD = {
    "project": ('[project]\nname = "x"\nnom = 1\n', ["[project] unknown key 'nom'"]),
    "storage": ("[storage]\ngc_grace = -1\n", ["[storage] gc_grace must be", "got -1"]),
    "tracking": ("[tracking]\nflush_rows = 0\n", ["[tracking] flush_rows must be", "got 0"]),
    "watch": (
        '[[watch]]\npath = "in/*.csv"\ndatset = "t"\n',
        ["[[watch]] #1 unknown key 'datset'", "did you mean 'dataset'"],
    ),
    "monitor": (
        '[monitor]\nsummary_every = "daily"\n',
        ["[monitor] summary_every must be a number above 0", "got 'daily'"],
    ),
    "monitor.drift": (
        "[monitor.drift]\ndrift_share = 'x'\n",
        ["[monitor.drift] drift_share must be a number above 0 and at most 1, got 'x'"],
    ),
    "monitor.drift.columns": (
        "[monitor.drift.columns.age]\nmethod = 'magic'\n",
        ["[monitor.drift.columns.age] method must be one of ks, chisquare", "got 'magic'"],
    ),
    "pipelines": (
        "[pipelines]\nworker = 4\n",
        ["[pipelines]", "did you mean 'workers'", "worker must be a pipeline target"],
    ),
    "pipelines.executor": (
        "[pipelines]\nexecutor = 'thread'\n",
        ["[pipelines] executor must be one of inline, process, ray, got 'thread'"],
    ),
    "pipelines.params": (
        "[pipelines.params]\ntrain = 3\n",
        ["[pipelines.params.train] must be a table, got 3"],
    ),
    "triggers": (
        "[triggers.nightly]\npipeline = 'train'\ncron = '0 25 * * *'\n",
        ["[triggers.nightly] cron must be a cron expression", "got '0 25 * * *'"],
    ),
    "triggers.conditions": (
        "[triggers.both]\npipeline = 'train'\ncron = '@hourly'\ndataset = 'd'\n",
        ["[triggers] a trigger has cron and dataset; give one condition per trigger"],
    ),
    "sched": (
        "[sched]\npolicy = 'smart'\n",
        ["[sched] policy must be one of static, auto, got 'smart'"],
    ),
    "sched.offpeak": (
        "[sched]\noffpeak = 'late'\n",
        ["[sched] offpeak must be a daily window like \"22:00-06:00\", got 'late'"],
    ),
    "sched.windows": (
        "[sched]\nwindows = ['weekdays 08-25: prod 50']\n",
        ["[sched] windows[0]: bad hours", "HH-HH"],
    ),
    "sched.pools": (
        "[sched.pools.prod]\nweight = 0\n",
        ["[sched.pools.prod] weight must be a number between 1 and 10000, got 0"],
    ),
    "sched.pools.name": (
        "[sched.pools.gpu]\nweight = 5\n",
        ["[sched.pools.gpu] is not a known name", "accepted: ml, prod, dev, batch"],
    ),
    "sched.hold": ("[[sched.hold]]\npid = 5\n", ["[[sched.hold]] #1 unknown key 'pid'"]),
    "sched.rules": (
        "[[sched.rules]]\npool = 'ml'\nexe = 'x'\n",
        ["[[sched.rules]] #1 pool must be one of prod, dev, batch, got 'ml'"],
    ),
    "section": ("[monitr]\n", ["unknown section [monitr]", "did you mean 'monitor'"]),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_value_in_any_section_is_one_line_naming_the_key(case: str, tmp_path: Path) -> None:
    extra, words = BAD[case]
    text = "" if case == "project" else '[project]\nname = "x"\n'
    (tmp_path / "mlkernel.toml").write_text(text + "\n" + extra)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{tmp_path / 'mlkernel.toml'}: ")
    for word in words:
        assert word in message


@pytest.mark.parametrize("case", ["monitor.drift", "pipelines", "triggers", "sched.pools"])
def test_the_cli_stops_with_exit_3_and_one_line(case: str, tmp_path: Path) -> None:
    extra, words = BAD[case]
    (tmp_path / "mlkernel.toml").write_text(render_config("x") + "\n" + extra)
    env = {**os.environ, "NO_COLOR": "1"}
    out = subprocess.run(
        [sys.executable, "-m", "mlkernel", "status"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert out.returncode == 3, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr
    assert words[0] in lines[0]


# -- one notion of off-peak: the scheduler's --------------------------------------------


def test_the_policy_answers_whether_now_is_offpeak() -> None:
    from mlkernel.sched.policy import PolicyConfig

    night = PolicyConfig.from_dict({"offpeak": "22:00-06:00"})
    assert night.is_offpeak(datetime(2026, 1, 1, 23, 30))
    assert night.is_offpeak(datetime(2026, 1, 1, 5, 59))
    assert not night.is_offpeak(datetime(2026, 1, 1, 12, 0))
    assert PolicyConfig.from_dict({}).is_offpeak(datetime(2026, 1, 1, 12, 0))  # no window


@pytest.mark.parametrize("table", ["sched", "monitor"])  # monitor: the older key, kept
def test_the_watcher_asks_the_scheduler_policy(
    table: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlkernel
    from mlkernel.sched.policy import PolicyConfig

    root = tmp_path / "p"
    mlkernel.init(root, name="p").close()
    config = root / "mlkernel.toml"
    config.write_text(config.read_text() + f'\n[{table}]\noffpeak = "01:00-03:00"\n')
    asked: list[datetime] = []
    original = PolicyConfig.is_offpeak

    def spy(self: PolicyConfig, when: datetime) -> bool:
        asked.append(when)
        return original(self, when)

    monkeypatch.setattr(PolicyConfig, "is_offpeak", spy)
    at = {"now": datetime(2026, 1, 1, 12, 0)}
    with mlkernel.open(root) as k:
        watcher = k.monitor.watcher([], clock=lambda: at["now"])
        assert not watcher._in_window()
        at["now"] = datetime(2026, 1, 1, 2, 0)
        assert watcher._in_window()
    assert asked == [datetime(2026, 1, 1, 12, 0), datetime(2026, 1, 1, 2, 0)]


def test_sched_offpeak_wins_over_the_older_monitor_key(tmp_path: Path) -> None:
    from mlkernel.sched.settings import offpeak_text

    sections = {"sched": {"offpeak": "01:00-02:00"}, "monitor": {"offpeak": "03:00-04:00"}}
    assert offpeak_text(sections) == "01:00-02:00"
    assert offpeak_text({"monitor": {"offpeak": "03:00-04:00"}}) == "03:00-04:00"
    assert offpeak_text({}) is None
