"""Hyper-parameter tuning: ``mlk.tune(objective, space, n_trials=, executor=)``.

Inside a pipeline, ``tune`` is a node like a step: it runs ``n_trials`` trials of the
objective step, each with parameters drawn from ``space``, and its output is the best
trial's output, which flows to the next step. Trials are recorded as executions (with
their parameters and metrics) of the same pipeline run. Optuna (TPE, seeded) drives the
search on the ``inline`` and ``process`` executors, where each trial runs like a step;
Ray Tune drives it on the ``ray`` executor.

``space`` maps parameter names to ``{"low": a, "high": b}`` (integers when both bounds
are, ``"log": true`` for a log scale) or to a list of choices. The objective returns
``mlk.Metrics`` or ``(value, mlk.Metrics)``; ``metric`` names the one to optimise (may be
left out when there is one).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlkernel.errors import UsageError
from mlkernel.pipeline.dsl import Step, _Tracer
from mlkernel.pipeline.values import StepOptions

if TYPE_CHECKING:
    from mlkernel.pipeline.executors import LogSink
    from mlkernel.pipeline.graph import Node
    from mlkernel.pipeline.loop import Loop
    from mlkernel.pipeline.values import Output

__all__ = ["TuneNode", "TuneResult", "tune"]


@dataclass(frozen=True, slots=True)
class TuneResult:
    """What ``tune`` returns outside a pipeline."""

    best_params: dict[str, Any]
    best_value: float
    best_output: Any
    trials: list[dict[str, Any]]


def _check_space(space: Mapping[str, Any], objective: Step[Any, Any]) -> dict[str, Any]:
    import inspect

    names = set(inspect.signature(objective.fn).parameters)
    checked: dict[str, Any] = {}
    for name, spec in space.items():
        if name not in names:
            raise UsageError(
                f"tune: {objective.name} has no parameter {name!r}; "
                f"it has: {', '.join(sorted(names))}"
            )
        if isinstance(spec, list | tuple) and spec:
            checked[name] = list(spec)
        elif isinstance(spec, Mapping) and "low" in spec and "high" in spec:
            if not spec["low"] < spec["high"]:
                raise UsageError(f"tune: {name}: low must be below high")
            checked[name] = {"low": spec["low"], "high": spec["high"], "log": bool(spec.get("log"))}
        else:
            raise UsageError(
                f"tune: space[{name!r}] is {spec!r}; write {{'low': 0.001, 'high': 0.1, "
                "'log': True}} or a list of choices"
            )
    if not checked:
        raise UsageError("tune: the space is empty; name at least one parameter to search")
    return checked


def _suggest(trial: Any, space: dict[str, Any]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for name, spec in space.items():
        if isinstance(spec, list):
            params[name] = trial.suggest_categorical(name, spec)
        elif isinstance(spec["low"], int) and isinstance(spec["high"], int) and not spec["log"]:
            params[name] = trial.suggest_int(name, spec["low"], spec["high"])
        else:
            params[name] = trial.suggest_float(
                name, float(spec["low"]), float(spec["high"]), log=spec["log"]
            )
    return params


def _ray_space(space: dict[str, Any]) -> dict[str, Any]:
    from ray import tune as rtune

    found: dict[str, Any] = {}
    for name, spec in space.items():
        if isinstance(spec, list):
            found[name] = rtune.choice(spec)
        elif isinstance(spec["low"], int) and isinstance(spec["high"], int) and not spec["log"]:
            found[name] = rtune.randint(spec["low"], spec["high"] + 1)
        elif spec["log"]:
            found[name] = rtune.loguniform(float(spec["low"]), float(spec["high"]))
        else:
            found[name] = rtune.uniform(float(spec["low"]), float(spec["high"]))
    return found


class _TrialFailed(Exception):
    pass


def _score(metrics: dict[str, float] | None, metric: str | None, name: str) -> float:
    if not metrics:
        raise UsageError(
            f"tune: {name} returned no metrics; return mlk.Metrics(...) or (value, mlk.Metrics(...))"
        )
    if metric is None:
        if len(metrics) != 1:
            raise UsageError(
                f"tune: {name} returns several metrics ({', '.join(metrics)}); name one with metric="
            )
        return float(next(iter(metrics.values())))
    if metric not in metrics:
        raise UsageError(
            f"tune: {name} returned no metric {metric!r}; it returned {', '.join(metrics)}"
        )
    return float(metrics[metric])


class TuneNode:
    """A tuning node of a pipeline (made by :func:`tune`)."""

    def __init__(
        self,
        objective: Step[Any, Any],
        space: dict[str, Any],
        n_trials: int,
        executor: str | None,
        metric: str | None,
        direction: str,
        seed: int,
        name: str | None,
    ) -> None:
        self.objective = objective
        self.fn = objective.fn
        self.space = space
        self.fixed: list[str] = []  # tuned parameters an override set to one value
        self.done_trials: list[dict[str, Any]] = []  # the trials run so far
        self.n_trials = n_trials
        self.executor = executor
        self.metric = metric
        self.direction = direction
        self.seed = seed
        base = objective.options
        self.options = StepOptions(
            name or f"{objective.name}.tune", base.cache, base.retries, base.timeout,
            base.output_kind, base.output_name or objective.name,
        )  # fmt: skip

    @property
    def name(self) -> str:
        return self.options.name

    @property
    def output(self) -> str:
        return f"{self.options.output_kind}:{self.options.output_name}"

    # -- overrides (see params.py) -------------------------------------------------

    #: settings of the search that ``-p`` / mlkernel.toml may set, like parameters.
    SETTINGS = ("n_trials", "seed")

    def set_setting(self, name: str, value: Any) -> None:
        """``-p n_trials=4`` (or ``STEP.tune.n_trials``): the number of trials; ``seed``."""
        if (
            not isinstance(value, int)
            or isinstance(value, bool)
            or (name == "n_trials" and value < 1)
        ):
            wanted = "an int of 1 or more" if name == "n_trials" else "an int"
            raise UsageError(
                f"{name} must be {wanted}, got {value!r} (a setting of tuning step {self.name})"
            )
        setattr(self, name, value)

    def fix(self, name: str) -> None:
        """An override set the tuned parameter ``name`` to one value: it is no longer
        searched; every trial takes that value (see :meth:`trials_to_run`)."""
        if name in self.space:
            self.space = {k: v for k, v in self.space.items() if k != name}
            self.fixed.append(name)

    @property
    def trials_to_run(self) -> int:
        """``n_trials``, or 1 when overrides fixed every tuned parameter (nothing to search)."""
        return self.n_trials if self.space else 1

    def cache_extra(self) -> dict[str, Any]:
        return {
            "space": self.space,
            "n_trials": self.trials_to_run,
            "metric": self.metric,
            "direction": self.direction,
            "seed": self.seed,
            "search": "ray" if self._uses_ray(None) else "optuna",
        }

    def _uses_ray(self, runner: Loop | None) -> bool:
        kind = self.executor or (runner.executor_name if runner is not None else None)
        return kind == "ray"

    # -- running (in the runner's worker thread) -------------------------------------

    def execute(
        self, runner: Loop, node: Node, spec: dict[str, Any], sink: LogSink
    ) -> dict[str, Any]:
        for name in self.fixed:
            sink.write(f"mlk: {name} is fixed by an override at {spec['args'][name]['value']!r}; "
                       "it is not searched\n")  # fmt: skip
        if not self.space:
            sink.write("mlk: every tuned parameter is fixed; one trial runs\n")
        if self._uses_ray(runner):
            trials = self._ray_trials(runner, node, spec)
        else:
            trials = self._optuna_trials(runner, spec, sink)
        good = [t for t in trials if t["ok"]]
        if not good:
            first = trials[0]["error"] if trials else "no trial ran"
            return {"ok": False, "error": f"all {len(trials)} trials failed; first: {first}",
                    "trials": trials}  # fmt: skip
        pick = min if self.direction == "minimize" else max
        best = pick(good, key=lambda t: t["score"])
        sink.write(f"mlk: best trial {best['number']}: {best['params']} -> {best['score']:.6g}\n")
        return {
            "ok": True,
            "output": best["output"],
            "metrics": best["metrics"],
            "trials": trials,
            "best": {
                "trial": best["number"],
                "params": best["params"],
                "metric": self.metric or next(iter(best["metrics"])),
                "value": best["score"],
                "direction": self.direction,
            },
            "wall_s": sum(t.get("wall_s") or 0 for t in trials),
            "max_rss_kb": max((t.get("max_rss_kb") or 0) for t in trials),
        }

    def _trial_spec(self, spec: dict[str, Any], params: dict[str, Any], n: int) -> dict[str, Any]:
        args = dict(spec["args"])
        args.update({k: {"value": v} for k, v in params.items()})
        return {**spec, "args": args, "step": f"{spec['step']}.trial-{n}"}

    def _optuna_trials(
        self, runner: Loop, spec: dict[str, Any], sink: LogSink
    ) -> list[dict[str, Any]]:
        try:
            import optuna
        except ImportError:
            raise UsageError("tuning needs Optuna; install it with `pip install optuna`") from None
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        executor = runner.executor()
        trials: list[dict[str, Any]] = []
        self.done_trials = trials  # read by the runner if the run is cancelled mid-search

        def objective(trial: Any) -> float:
            params = _suggest(trial, self.space)
            sink.write(f"mlk: trial {trial.number}: {params}\n")
            started = time.time()
            result = executor.run(
                self._trial_spec(spec, params, trial.number), self.objective, sink
            )
            record = {"number": trial.number, "params": params, **result,
                      "started": started, "ended": time.time()}  # fmt: skip
            trials.append(record)
            if result.get("error") == "cancelled":
                raise KeyboardInterrupt
            if not result["ok"]:
                raise _TrialFailed(result["error"])
            try:
                record["score"] = _score(result.get("metrics"), self.metric, self.objective.name)
            except UsageError as exc:
                record.update(ok=False, error=str(exc))
                raise _TrialFailed(str(exc)) from None
            score: float = record["score"]
            return score

        sampler = optuna.samplers.TPESampler(seed=self.seed)
        study = optuna.create_study(direction=self.direction, sampler=sampler)  # type: ignore[arg-type]
        study.optimize(objective, n_trials=self.trials_to_run, catch=(_TrialFailed,))
        return trials

    def _ray_trials(self, runner: Loop, node: Node, spec: dict[str, Any]) -> list[dict[str, Any]]:
        import ray
        from ray import tune as rtune

        runner.executor()  # ray.init
        metric = self.metric
        objective_name = self.objective.name
        base = {**spec, "target": runner.target(node)}
        trial_spec = self._trial_spec

        def trainable(config: dict[str, Any]) -> dict[str, Any]:
            from mlkernel.pipeline.task import run_spec

            started = time.time()
            result = run_spec(trial_spec(base, dict(config), 0))
            if not result["ok"]:
                raise RuntimeError(result["error"])
            result.update(started=started, ended=time.time())
            metrics = result.get("metrics") or {}
            return {
                **metrics,
                "mlk_score": _score(metrics, metric, objective_name),
                "mlk_result": json.dumps(result),
            }

        tuner = rtune.Tuner(
            trainable,
            param_space=_ray_space(self.space),
            tune_config=rtune.TuneConfig(
                num_samples=self.trials_to_run,
                metric="mlk_score",
                mode="min" if self.direction == "minimize" else "max",
            ),
            run_config=ray.tune.RunConfig(
                storage_path=str(runner.ctx.cache_dir / "ray_tune"), verbose=0
            ),
        )
        grid = tuner.fit()
        trials: list[dict[str, Any]] = []
        for number, outcome in enumerate(grid):  # type: ignore[var-annotated,arg-type]
            params = {k: outcome.config[k] for k in self.space}
            if outcome.error is not None or "mlk_result" not in (outcome.metrics or {}):
                trials.append({"number": number, "params": params, "ok": False,
                               "error": str(outcome.error).splitlines()[0][:300], "metrics": None,
                               "output": None})  # fmt: skip
                continue
            result = json.loads(outcome.metrics["mlk_result"])
            trials.append({"number": number, "params": params, **result,
                           "score": float(outcome.metrics["mlk_score"])})  # fmt: skip
        return trials


def tune(
    objective: Step[Any, Any],
    space: Mapping[str, Any],
    *,
    n_trials: int = 20,
    executor: str | None = None,
    metric: str | None = None,
    direction: str = "minimize",
    seed: int = 0,
    name: str | None = None,
    **inputs: Any,
) -> Output | TuneResult:
    """Search ``space`` for the parameters of ``objective`` that optimise ``metric``.

    In a pipeline: a node whose output is the best trial's output (``inputs`` are the
    objective's other arguments, e.g. step outputs). Outside one: Optuna in this process,
    returning a :class:`TuneResult`.
    """
    if not isinstance(objective, Step):
        raise UsageError("tune: the objective must be an @mlk.step function")
    if n_trials < 1:
        raise UsageError(f"tune: n_trials is {n_trials}; use 1 or more")
    if direction not in ("minimize", "maximize"):
        raise UsageError(f"tune: direction is {direction!r}; use 'minimize' or 'maximize'")
    checked = _check_space(space, objective)
    node = TuneNode(objective, checked, n_trials, executor, metric, direction, seed, name)
    tracer = _Tracer.current
    if tracer is not None:
        return tracer.add(node, (), inputs)
    return _tune_here(node, inputs)


def _tune_here(node: TuneNode, inputs: dict[str, Any]) -> TuneResult:
    import optuna

    from mlkernel.pipeline.dsl import Metrics

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    trials: list[dict[str, Any]] = []
    outputs: dict[int, Any] = {}

    def objective(trial: Any) -> float:
        params = _suggest(trial, node.space)
        value = node.objective.fn(**inputs, **params)
        metrics = value[1] if isinstance(value, tuple) and len(value) == 2 else value
        if not isinstance(metrics, Metrics):
            raise UsageError(f"tune: {node.objective.name} must return mlk.Metrics")
        outputs[trial.number] = value[0] if isinstance(value, tuple) else value
        score = _score(dict(metrics), node.metric, node.objective.name)
        trials.append(
            {"number": trial.number, "params": params, "metrics": dict(metrics), "score": score}
        )
        return score

    sampler = optuna.samplers.TPESampler(seed=node.seed)
    study = optuna.create_study(direction=node.direction, sampler=sampler)  # type: ignore[arg-type]
    study.optimize(objective, n_trials=node.n_trials)
    best = study.best_trial
    return TuneResult(dict(best.params), float(best.value or 0.0), outputs[best.number], trials)
