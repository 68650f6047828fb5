"""Sweep specs: parsing, every bad-input case of the notes (§10), overrides, the Optuna side."""

from __future__ import annotations

import copy
import datetime
import json
import re
from typing import Any

import optuna
import pytest
import yaml
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from tuning import jobs
from tuning import sweep_spec as ss
from tuning.example_trainer.digits_trainer import train as digits
from tuning.sweep_spec import Param, SpecError, SweepSpec

optuna.logging.set_verbosity(optuna.logging.WARNING)

BASE: dict[str, Any] = {
    "name": "digits-sweep",
    "code": "hdfs://nn:8020/code/digits_trainer-1.0.0-py3-none-any.whl",
    "data": "hdfs://nn:8020/data",
    "output": "hdfs://nn:8020/models",
    "epochs": 5,
    "params": {"seed": 7},
    "search_space": {
        "learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
        "batch_size": {"type": "categorical", "choices": [32, 64, 128]},
        "dense": {"type": "int", "low": 32, "high": 256, "log": True},
        "dropout": {"type": "float", "low": 0.0, "high": 0.5, "step": 0.1},
    },
    "budget": {"max_trials": 12},
    "parallelism": 2,
}
DELETE = object()


def doc(*changes: tuple[str, Any]) -> str:
    """BASE with dotted-path changes applied (DELETE removes the key), as YAML."""
    d = copy.deepcopy(BASE)
    for path, value in changes:
        *parents, last = path.split(".")
        node = d
        for key in parents:
            node = node.setdefault(key, {})
        if value is DELETE:
            node.pop(last, None)
        else:
            node[last] = value
    return yaml.safe_dump(d, sort_keys=False)


def problems(text: str, **overrides: Any) -> list[str]:
    with pytest.raises(SpecError) as info:
        ss.resolve(text, source="sweep.yaml", **overrides)
    return info.value.problems


def field_of(message: str) -> str:
    """The field path a message names (after an optional `source:line: ` prefix)."""
    return re.sub(r"^[^:\s]+:\d+: ", "", message).split(": ", 1)[0]


def assert_problem(found: list[str], path: str, phrase: str) -> None:
    hits = [m for m in found if field_of(m) == path]
    assert hits, f"no problem for {path!r} in {found}"
    assert any(phrase in m for m in hits), f"{phrase!r} not in {hits}"


def valid() -> SweepSpec:
    spec, warns = ss.resolve(doc(), source="sweep.yaml")
    assert warns == []
    return spec


# --------------------------------------------------------------------------- the example


def test_the_example_loads_with_no_problems_and_no_warnings() -> None:
    spec = ss.load(ss.EXAMPLE, source="example")
    assert ss.validate(spec) == []
    assert ss.warnings(spec) == []
    resolved, warns = ss.resolve(ss.EXAMPLE, source="example")
    assert warns == [] and resolved.budget.max_failed == 3
    assert resolved.search_space[0] == Param("learning_rate", "float", 1e-4, 1e-2, log=True)
    assert resolved.promotion is None and resolved.storage is None
    assert (resolved.sampler.type, resolved.pruner.type, resolved.parallelism) == ("tpe",
                                                                                   "median", 2)


def test_the_example_only_uses_what_the_digits_trainer_takes_and_reports() -> None:
    spec = ss.load(ss.EXAMPLE, source="example")
    names = {q.name for q in spec.search_space} | {k for k, _ in spec.params}
    assert names <= set(digits.LIMITS)
    assert spec.objective.metric in ("loss", "accuracy", "val_loss", "val_accuracy")
    assert "fleet train publish-example --to" in ss.EXAMPLE
    assert "code/digits_trainer-1.0.0-py3-none-any.whl" in spec.code
    study = optuna.create_study(direction=spec.objective.direction,
                                sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):  # every suggestion is a valid digits-trainer parameter set
        trial = study.ask()
        digits.parse_params(ss.trial_params(spec, ss.suggest(trial, spec)))
        study.tell(trial, 0.5)


def test_the_example_round_trips_through_json() -> None:
    spec, _ = ss.resolve(ss.EXAMPLE, source="example")
    text = json.dumps(ss.to_dict(spec))
    assert ss.from_dict(json.loads(text)) == spec
    assert ss.load(yaml.safe_dump(ss.to_dict(spec), sort_keys=False), source="again") == spec


def test_the_name_limit_leaves_room_for_trial_jobs() -> None:
    assert ss.JOB_NAME_LIMIT == jobs.MAX_NAME and ss.MAX_WORKERS == jobs.MAX_WORKERS
    assert ss.MAX_NAME == 40
    longest_trial_job = "a" * ss.MAX_NAME + "-" + "9" * (ss.TRIAL_SUFFIX_ROOM - 1)
    assert len(longest_trial_job) <= jobs.MAX_NAME


# --------------------------------------------------------------------------- search space

SPACE = "search_space"


@pytest.mark.parametrize("changes, path, phrase", [
    # low > high
    ([(f"{SPACE}.dropout.low", 0.6)], f"{SPACE}.dropout.low", "greater than high 0.5"),
    ([(f"{SPACE}.dense.low", 300)], f"{SPACE}.dense.low", "greater than high 256"),
    # log with low <= 0 (float) / low < 1 (int)
    ([(f"{SPACE}.learning_rate.low", 0.0)], f"{SPACE}.learning_rate.low", "needs low > 0"),
    ([(f"{SPACE}.learning_rate.low", -1.0)], f"{SPACE}.learning_rate.low", "needs low > 0"),
    ([(f"{SPACE}.dense.low", 0)], f"{SPACE}.dense.low", "needs low >= 1"),
    # step with log
    ([(f"{SPACE}.learning_rate.step", 0.001)], f"{SPACE}.learning_rate.step",
     "cannot be combined with log: true"),
    ([(f"{SPACE}.dense.step", 2)], f"{SPACE}.dense.step", "cannot be combined with log"),
    # step <= 0
    ([(f"{SPACE}.dropout.step", 0.0)], f"{SPACE}.dropout.step", "must be > 0"),
    ([(f"{SPACE}.dropout.step", -0.1)], f"{SPACE}.dropout.step", "must be > 0"),
    ([(f"{SPACE}.conv1", {"type": "int", "low": 8, "high": 32, "step": 0})],
     f"{SPACE}.conv1.step", "must be > 0"),
    # step larger than the range
    ([(f"{SPACE}.dropout.step", 0.6)], f"{SPACE}.dropout.step", "larger than the range"),
    ([(f"{SPACE}.conv1", {"type": "int", "low": 8, "high": 16, "step": 16})],
     f"{SPACE}.conv1.step", "larger than the range 8..16"),
    # empty categorical list
    ([(f"{SPACE}.batch_size.choices", [])], f"{SPACE}.batch_size.choices", "empty"),
    ([(f"{SPACE}.batch_size.choices", DELETE)], f"{SPACE}.batch_size.choices", "missing"),
    # unknown / missing type
    ([(f"{SPACE}.dropout.type", "double")], f"{SPACE}.dropout.type",
     "'double' is not float, int or categorical"),
    ([(f"{SPACE}.dropout.type", "Float")], f"{SPACE}.dropout.type", "did you mean 'float'"),
    ([(f"{SPACE}.dropout.type", DELETE)], f"{SPACE}.dropout.type", "required"),
    # NaN / inf bounds
    ([(f"{SPACE}.dropout.low", float("nan"))], f"{SPACE}.dropout.low", "not a finite number"),
    ([(f"{SPACE}.dropout.high", float("inf"))], f"{SPACE}.dropout.high", "not a finite number"),
    ([(f"{SPACE}.learning_rate.low", float("-inf"))], f"{SPACE}.learning_rate.low",
     "not a finite number"),
    # choices that are not JSON scalars
    ([(f"{SPACE}.batch_size.choices", [32, datetime.date(2024, 1, 1)])],
     f"{SPACE}.batch_size.choices[1]", "quote it"),
    ([(f"{SPACE}.batch_size.choices", [32, {"a": 1}])], f"{SPACE}.batch_size.choices[1]",
     "a mapping is not a valid choice"),
    ([(f"{SPACE}.batch_size.choices", [[1, 2], 3])], f"{SPACE}.batch_size.choices[0]",
     "a list is not a valid choice"),
    ([(f"{SPACE}.batch_size.choices", [1.0, float("nan")])], f"{SPACE}.batch_size.choices[1]",
     "not a finite number"),
    ([(f"{SPACE}.batch_size.choices", [32, 64, 32])], f"{SPACE}.batch_size.choices[2]",
     "duplicate of choices[0]"),
    # fields of the wrong kind of param, wrong types
    ([(f"{SPACE}.batch_size.low", 1)], f"{SPACE}.batch_size.low", "only float and int"),
    ([(f"{SPACE}.dropout.choices", [0.1])], f"{SPACE}.dropout.choices",
     "only categorical params take choices"),
    ([(f"{SPACE}.dense.low", 1.5)], f"{SPACE}.dense.low", "expected an integer, got 1.5"),
    ([(f"{SPACE}.dropout.high", "half")], f"{SPACE}.dropout.high", "expected a number"),
    ([(f"{SPACE}.dropout.log", "maybe")], f"{SPACE}.dropout.log", "expected true or false"),
    ([(f"{SPACE}.dropout.high", DELETE)], f"{SPACE}.dropout.high", "required for a float"),
    ([(f"{SPACE}.dropout.lo", 0.0)], f"{SPACE}.dropout.lo", "did you mean 'low'"),
    ([(f"{SPACE}.seed2", 7)], f"{SPACE}.seed2", "a fixed value belongs under params"),
    ([(SPACE, {})], SPACE, "empty; a sweep needs at least one parameter"),
    ([(SPACE, DELETE)], SPACE, "empty"),
    ([(SPACE, ["lr"])], SPACE, "expected a mapping"),
    ([(f"{SPACE}.bad name", [1, 2])], f"{SPACE}.bad name", "identifier-like"),
    # a name both fixed and searched
    ([("params.dropout", 0.2)], "params.dropout", "also in search_space"),
    ([("params.extra", None)], "params.extra", "null is not a value"),
    ([("params.extra", [1])], "params.extra", "expected a single value"),
    ([("params.extra", float("nan"))], "params.extra", "not a finite number"),
])
def test_search_space_problems(changes: list[tuple[str, Any]], path: str, phrase: str) -> None:
    assert_problem(problems(doc(*changes)), path, phrase)


def test_a_duplicate_parameter_name_in_the_yaml_names_both_lines() -> None:
    text = doc().replace("  batch_size:", "  dense: {type: int, low: 1, high: 2}\n  batch_size:")
    found = problems(text)
    assert_problem(found, f"{SPACE}.dense", "defined twice (lines")
    assert any(m.startswith("sweep.yaml:") for m in found)


def test_duplicate_names_in_a_python_built_spec() -> None:
    spec = replace_space(valid(), Param("dropout", "float", 0.0, 0.2))
    assert_problem(ss.validate(spec), f"{SPACE}.dropout", "defined twice")


def replace_space(spec: SweepSpec, *extra: Param) -> SweepSpec:
    from dataclasses import replace

    return replace(spec, search_space=spec.search_space + extra)


def test_sql_looking_strings_are_kept_verbatim() -> None:
    sql = "'; DROP TABLE trials; --"
    text = doc((f"{SPACE}.batch_size", {"type": "categorical", "choices": [sql, "x\" OR 1=1"]}),
               ("params.note", "Robert'); DROP TABLE sweeps;--"))
    spec, _ = ss.resolve(text, source="sweep.yaml")
    assert spec.param("batch_size").choices == (sql, "x\" OR 1=1")
    assert dict(spec.params)["note"] == "Robert'); DROP TABLE sweeps;--"
    assert ss.from_dict(json.loads(json.dumps(ss.to_dict(spec)))) == spec
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1)).ask()
    assert ss.suggest(trial, spec)["batch_size"] in (sql, "x\" OR 1=1")


def test_yaml_1_2_floats_and_list_shorthand() -> None:
    text = doc().replace("low: 0.0001", "low: 1e-4").replace("high: 0.01", "high: 1.0E-2")
    assert "1e-4" in text
    spec, _ = ss.resolve(text, source="sweep.yaml")
    assert spec.param("learning_rate").low == 1e-4 and spec.param("learning_rate").high == 0.01
    short = ss.load(doc((f"{SPACE}.batch_size", [16, 32])), source="s")
    assert short.param("batch_size") == Param("batch_size", "categorical", choices=(16, 32))


# --------------------------------------------------------------------------- grid


def grid_doc(max_trials: int, **space: Any) -> str:
    return doc((SPACE, space), ("sampler", {"type": "grid"}), ("budget.max_trials", max_trials))


def test_grid_too_large_for_the_budget_says_how_many_trials_it_needs() -> None:
    text = grid_doc(10, lr={"type": "float", "low": 0.1, "high": 0.5, "step": 0.1},
                    bs=[16, 32, 64], conv1={"type": "int", "low": 8, "high": 32, "step": 8})
    assert_problem(problems(text), "budget.max_trials", "the grid needs 60 trials")


def test_grid_needs_a_step_for_float_params() -> None:
    text = grid_doc(100, lr={"type": "float", "low": 0.1, "high": 0.5}, bs=[16, 32])
    assert_problem(problems(text), f"{SPACE}.lr", "the grid sampler needs a step")
    text = grid_doc(100, lr={"type": "float", "low": 1e-4, "high": 0.1, "log": True})
    assert_problem(problems(text), f"{SPACE}.lr", "cannot use a log-scaled float")


def test_a_grid_that_fits_builds_a_grid_sampler_and_warns_when_smaller() -> None:
    text = grid_doc(8, lr={"type": "float", "low": 0.1, "high": 0.3, "step": 0.1},
                    bs=[16, 32])
    spec, warns = ss.resolve(text, source="sweep.yaml")
    assert any("the grid has only 6 points" in w for w in warns)
    assert ss.grid_space(spec) == {"lr": [0.1, 0.2, 0.3], "bs": [16, 32]}
    sampler = ss.make_sampler(spec)
    assert isinstance(sampler, optuna.samplers.GridSampler)
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda t: ss.suggest(t, spec)["lr"], n_trials=6)
    seen = {(t.params["lr"], t.params["bs"]) for t in study.trials}
    assert len(seen) == 6


# --------------------------------------------------------------------------- names


@pytest.mark.parametrize("name, phrase", [
    ("", "required"),
    (" digits", "contains whitespace"),
    ("dig its", "contains whitespace"),
    ("Digits", "contains uppercase letters"),
    ("my_sweep", "contains '_'"),
    ("my.sweep", "contains '.'"),
    ("dígits", "contains non-ASCII characters"),
    ("-digits", "starts with '-'"),
    ("digits-", "ends with '-'"),
    ("1digits", "does not start with a letter"),
    ("a/b", "contains '/'"),
    ("d" * 41, "is 41 characters long, more than 40"),
])
def test_bad_names(name: str, phrase: str) -> None:
    assert_problem(problems(doc(("name", name))), "name", phrase)


def test_a_name_of_exactly_the_limit_is_fine_and_a_number_is_a_type_error() -> None:
    ss.resolve(doc(("name", "d" * ss.MAX_NAME)), source="sweep.yaml")
    assert_problem(problems(doc(("name", 2024))), "name", "expected a string, got 2024")


@pytest.mark.parametrize("changes, path, phrase", [
    ([("namespace", "ML")], "namespace", "contains uppercase letters"),
    ([("promotion", {"deployment": "Digits_Live"})], "promotion.deployment", "uppercase"),
    ([("promotion", {"min_delta": 0.1})], "promotion.deployment", "required"),
    ([("promotion", {"deployment": "digits", "min_delta": -0.1})], "promotion.min_delta",
     "must be a finite number >= 0"),
    ([("promotion", {"deployment": "digits", "auto_promote": "yes please"})],
     "promotion.auto_promote", "expected true or false"),
    ([("code", DELETE)], "code", "required"),
    ([("code", "s3://bucket/t.whl")], "code", "must be an absolute path"),
    ([("code", "/code/train.py")], "code", "wheel or sdist"),
    ([("data", "data")], "data", "must be an absolute path"),
    ([("output", DELETE)], "output", "required"),
    ([("cpu", "two")], "cpu", "not a Kubernetes quantity"),
])
def test_other_field_problems(changes: list[tuple[str, Any]], path: str, phrase: str) -> None:
    assert_problem(problems(doc(*changes)), path, phrase)


# --------------------------------------------------------------------------- storage


@pytest.mark.parametrize("url, phrase", [
    ("sqlite:///sweeps.db", "cannot be shared by pods"),
    ("sqlite://", "cannot be shared by pods"),
    ("mysql+pymysql://u@db/optuna", "need PostgreSQL"),
    ("postgres://u@db/optuna", "did you mean 'postgresql'"),
    ("oracle://u@db/optuna", "unknown or unsupported dialect 'oracle'"),
    ("redis://cache:6379", "unknown or unsupported dialect"),
    ("not a url", "not a database URL"),
    ("", "empty"),
    ("postgresql://optuna:s3cret@db/optuna", "holds a password"),
    ("postgresql:///optuna", "no host"),
])
def test_storage_problems(url: str, phrase: str) -> None:
    found = problems(doc(("storage", url)))
    assert_problem(found, "storage", phrase)
    assert not any("s3cret" in m for m in found)


def test_storage_from_the_flag_is_marked_as_such() -> None:
    found = problems(doc(), storage="sqlite:///x.db")
    assert any(m.startswith("storage: ") and m.endswith("(from --storage)") for m in found)


def test_accepted_storage_urls() -> None:
    for url in ("postgresql://optuna@db.ml.svc:5432/optuna",
                "postgresql+psycopg://optuna@db.ml.svc/optuna"):
        spec, warns = ss.resolve(doc(("storage", url)), source="sweep.yaml")
        assert spec.storage == url and warns == []
    _, warns = ss.resolve(doc(("storage", "postgresql://u@localhost/optuna")), source="s")
    assert any("localhost is the pod itself" in w for w in warns)


def test_a_missing_driver_is_found_before_any_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy.dialects.postgresql import psycopg2

    def missing() -> None:
        raise ModuleNotFoundError("No module named 'psycopg2'", name="psycopg2")

    monkeypatch.setattr(psycopg2.PGDialect_psycopg2, "import_dbapi", staticmethod(missing))
    url = "postgresql+psycopg2://optuna@db/optuna"
    message = ss.check_storage_driver(url)
    assert message and "'psycopg2'" in message and "pip install psycopg2-binary" in message
    assert_problem(problems(doc(("storage", url))), "storage", "needs the Python package")
    assert ss.check_storage_driver("postgresql+psycopg://optuna@db/optuna") is None
    assert "unknown dialect" in (ss.check_storage_driver("nosuch://x") or "")


def test_an_environment_url_may_hold_a_password() -> None:
    assert ss.check_storage("postgresql://optuna:pw@db/optuna") == []
    found = ss.check_storage("sqlite:///x.db")
    assert found and found[0].startswith("$FLEET_OPTUNA_STORAGE: ")


# --------------------------------------------------------------------------- budgets, pods


@pytest.mark.parametrize("changes, path, phrase", [
    ([("parallelism", 0)], "parallelism", "must be >= 1"),
    ([("parallelism", -2)], "parallelism", "must be >= 1"),
    ([("budget.max_trials", 0)], "budget.max_trials", "must be >= 1"),
    ([("budget.max_trials", -5)], "budget.max_trials", "must be >= 1"),
    ([("budget", DELETE)], "budget.max_trials", "required"),
    ([("budget.max_trials", "many")], "budget.max_trials", "expected an integer"),
    ([("budget.max_failed", -1)], "budget.max_failed", "must be >= 0"),
    ([("budget.timeout", 0)], "budget.timeout", "must be a positive duration"),
    ([("budget.timeout", -30)], "budget.timeout", "must be a positive duration"),
    ([("budget.timeout", "soon")], "budget.timeout", "a duration such as 90m"),
    ([("budget.max_trails", 4)], "budget.max_trails", "did you mean 'max_trials'"),
    ([("max_trials", 4)], "max_trials", "belongs under budget"),
    ([("serach_space", {})], "serach_space", "did you mean 'search_space'"),
    ([("gpus", -1)], "gpus", "must be >= 0"),
    ([("gpus", True)], "gpus", "expected an integer, got True"),
    ([("epochs", 0)], "epochs", "must be between 1 and 100000"),
    ([("epochs", "ten")], "epochs", "expected an integer"),
    ([("workers_per_trial", 2)], "workers_per_trial", "need mode: pod-per-trial"),
    ([("workers_per_trial", 0)], "workers_per_trial", "between 1 and 64"),
    ([("mode", "pods")], "mode", "is not pool or pod-per-trial"),
    ([("abort_after_identical_failures", -1)], "abort_after_identical_failures", ">= 0"),
    # objective
    ([("objective", {"direction": "maximise"})], "objective.direction",
     "did you mean 'maximize'"),
    ([("objective", {"direction": "up"})], "objective.direction",
     "'up' is not maximize or minimize"),
    ([("objective", {"metric": ""})], "objective.metric", "empty"),
    ([("objective", {"metric": "   "})], "objective.metric", "empty"),
    ([("objective", "val_accuracy")], "objective", "expected a mapping"),
    # sampler / pruner
    ([("sampler", "cma")], "sampler.type", "did you mean 'cmaes'"),
    ([("sampler", {"type": "tpe", "seed": -1})], "sampler.seed", "between 0 and"),
    ([("pruner", "medain")], "pruner.type", "did you mean 'median'"),
    ([("pruner", {"type": "median", "warmup_steps": -1})], "pruner.warmup_steps", ">= 0"),
    ([("pruner", {"type": "median", "startup_trials": -1})], "pruner.startup_trials", ">= 0"),
    ([("pruner", {"type": "hyperband", "warmup_steps": 2})], "pruner.warmup_steps",
     "applies only to the median pruner"),
    ([("pruner", {"type": "hyperband", "min_resource": 9})], "pruner.min_resource",
     "between 1 and epochs (5)"),
    ([("pruner", {"type": "hyperband", "reduction_factor": 1})], "pruner.reduction_factor",
     ">= 2"),
])
def test_budget_pod_objective_sampler_pruner_problems(changes: list[tuple[str, Any]], path: str,
                                                      phrase: str) -> None:
    assert_problem(problems(doc(*changes)), path, phrase)


def test_parallelism_above_max_trials_is_clamped_with_a_warning() -> None:
    spec, warns = ss.resolve(doc(("parallelism", 20), ("budget.max_trials", 4)), source="s")
    assert spec.parallelism == 4
    assert any(w.startswith("parallelism: 20 is more than budget.max_trials 4; clamped")
               for w in warns)
    raw = ss.load(doc(("parallelism", 20), ("budget.max_trials", 4)), source="s")
    assert ss.validate(raw) == [] and raw.effective_parallelism == 4


def test_durations_and_the_max_failed_default() -> None:
    for value, seconds in (("90m", 5400.0), ("1h30m", 5400.0), ("2d", 172800.0), (45, 45.0),
                           ("30", 30.0)):
        assert ss.load(doc(("budget.timeout", value)), source="s").budget.timeout == seconds
    assert ss.finalize(ss.load(doc(("budget.max_trials", 40)), source="s")).budget.max_failed == 10
    assert ss.finalize(ss.load(doc(), source="s")).budget.max_failed == 3


def test_pod_per_trial_allows_distributed_trials() -> None:
    spec, _ = ss.resolve(doc(("mode", "pod-per-trial"), ("workers_per_trial", 2), ("gpus", 1)),
                         source="s")
    assert spec.pods == 4


@pytest.mark.parametrize("sampler, package", [("gp", "torch"), ("gp", "scipy"),
                                              ("cmaes", "cmaes")])
def test_a_sampler_without_its_package_is_refused_up_front(
        monkeypatch: pytest.MonkeyPatch, sampler: str, package: str) -> None:
    real = ss.importlib.util.find_spec
    monkeypatch.setattr(ss.importlib.util, "find_spec",
                        lambda name, *a: None if name == package else real(name, *a))
    assert_problem(problems(doc(("sampler", sampler))), "sampler.type",
                   f"needs the Python package {package!r}")


def test_gp_and_cmaes_pass_when_their_packages_exist(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ss.importlib.util, "find_spec", lambda name, *a: object())
    for kind, cls in (("gp", optuna.samplers.GPSampler), ("cmaes", optuna.samplers.CmaEsSampler)):
        spec, _ = ss.resolve(doc(("sampler", {"type": kind, "seed": 3})), source="s")
        assert isinstance(ss.make_sampler(spec), cls)


# --------------------------------------------------------------------------- structure


def test_yaml_errors_name_the_source_and_line() -> None:
    found = problems("name: digits\nsearch_space: [unclosed\n")
    assert len(found) == 1 and found[0].startswith("sweep.yaml: not valid YAML")
    assert 'in "sweep.yaml", line' in found[0]


@pytest.mark.parametrize("text, phrase", [("", "the spec is empty"),
                                          ("- a\n- b\n", "expected a mapping of fields")])
def test_empty_or_non_mapping_documents(text: str, phrase: str) -> None:
    assert_problem(problems(text), "(spec)", phrase)


def test_messages_carry_the_line_of_the_field() -> None:
    found = problems(doc(("gpus", -1)))
    line = next(i for i, t in enumerate(doc(("gpus", -1)).splitlines(), 1) if t.startswith("gpus"))
    assert f"sweep.yaml:{line}: gpus: -1 must be >= 0" in found[0]


def test_load_raises_only_structural_problems() -> None:
    with pytest.raises(SpecError) as info:
        ss.load(doc(("epochs", "ten"), ("gpus", -1)), source="s")
    assert [field_of(m) for m in info.value.problems] == ["epochs"]
    spec = ss.load(doc(("gpus", -1)), source="s")  # semantic: for validate()
    assert ss.validate(spec) == ["gpus: -1 must be >= 0 (nvidia.com/gpu per pod)"]


def test_alias_expansion_does_not_explode() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, c in zip("abcdefg", "bcdefgh", strict=True))
    found = problems(bomb)
    assert_problem(found, "a", "unknown key at the top level")


# --------------------------------------------------------------------------- all at once


def test_every_problem_is_reported_at_once() -> None:
    text = doc(("name", "Bad_Name"), ("epochs", 0), ("gpus", -1), ("parallelism", 0),
               ("budget.max_trials", 0), ("budget.max_failed", -1),
               ("objective", {"metric": "", "direction": "sideways"}),
               (f"{SPACE}.dropout.low", 0.9), (f"{SPACE}.learning_rate.low", 0.0),
               (f"{SPACE}.batch_size.choices", []), (f"{SPACE}.dense.stp", 2),
               ("storage", "sqlite:///s.db"), ("workers_per_trial", 3), ("sampler", "nope"),
               ("pruner", {"type": "none", "warmup_steps": 1}))
    found = problems(text)
    expected = {"name", "epochs", "gpus", "parallelism", "budget.max_trials",
                "budget.max_failed", "objective.metric", "objective.direction",
                f"{SPACE}.dropout.low", f"{SPACE}.learning_rate.low",
                f"{SPACE}.batch_size.choices", f"{SPACE}.dense.stp", "storage",
                "workers_per_trial", "sampler.type", "pruner.warmup_steps"}
    assert {field_of(m) for m in found} == expected
    spec = ss.load(doc(("gpus", -1), ("epochs", 0), (f"{SPACE}.dropout.low", 0.9)), source="s")
    assert {field_of(m) for m in ss.validate(spec)} == {"gpus", "epochs", f"{SPACE}.dropout.low"}


def test_a_field_that_failed_to_parse_gets_one_message_not_two() -> None:
    found = problems(doc(("code", 42), ("budget.max_trials", "x")))
    assert sorted(field_of(m) for m in found) == ["budget.max_trials", "code"]
    assert_problem(found, "code", "expected a string")
    assert_problem(found, "budget.max_trials", "expected an integer")


# --------------------------------------------------------------------------- overrides


def test_overrides_replace_fields_and_are_validated_again() -> None:
    spec = ss.apply_overrides(valid(), name="other", max_trials=30, parallelism=5,
                              code="/code/t-2.0-py3-none-any.whl", data="/data",
                              storage="postgresql://u@db/optuna")
    assert (spec.name, spec.budget.max_trials, spec.parallelism, spec.code, spec.data,
            spec.storage) == ("other", 30, 5, "/code/t-2.0-py3-none-any.whl", "/data",
                              "postgresql://u@db/optuna")
    assert ss.apply_overrides(valid()) == valid()
    assert_problem(ss.validate(ss.apply_overrides(valid(), max_trials=0)), "budget.max_trials",
                   "must be >= 1")


def test_flags_fill_in_what_the_file_leaves_out() -> None:
    text = doc(("name", DELETE), ("code", DELETE), ("budget", DELETE))
    assert {field_of(m) for m in problems(text)} == {"name", "code", "budget.max_trials"}
    spec, _ = ss.resolve(text, source="s", name="from-flag", max_trials=6,
                         code="hdfs://nn/code/t-1.0-py3-none-any.whl")
    assert (spec.name, spec.budget.max_trials) == ("from-flag", 6)


def test_a_flag_supersedes_a_bad_value_in_the_file_and_is_named_in_messages() -> None:
    spec, _ = ss.resolve(doc(("name", "Bad Name")), source="s", name="good")
    assert spec.name == "good"
    found = problems(doc(), max_trials=0, parallelism=-1)
    assert "budget.max_trials: 0 must be >= 1 (from --max-trials)" in found
    assert any(m.startswith("parallelism: -1") and "(from --parallelism)" in m for m in found)


# --------------------------------------------------------------------------- Optuna side


def test_distributions() -> None:
    spec = valid()
    assert ss.distributions(spec) == {
        "learning_rate": FloatDistribution(1e-4, 1e-2, log=True),
        "batch_size": CategoricalDistribution([32, 64, 128]),
        "dense": IntDistribution(32, 256, log=True),
        "dropout": FloatDistribution(0.0, 0.5, step=0.1),
    }


@pytest.mark.parametrize("kind, cls", [("tpe", optuna.samplers.TPESampler),
                                       ("random", optuna.samplers.RandomSampler),
                                       ("gp", optuna.samplers.GPSampler),
                                       ("cmaes", optuna.samplers.CmaEsSampler)])
def test_make_sampler(kind: str, cls: type) -> None:
    spec = ss.load(doc(("sampler", {"type": kind, "seed": 11})), source="s")
    assert isinstance(ss.make_sampler(spec), cls)


def test_tpe_keeps_the_optuna_5_defaults() -> None:
    sampler = ss.make_sampler(valid())
    assert sampler._constant_liar is True and sampler._n_startup_trials == 10


def test_each_worker_gets_its_own_seed() -> None:
    spec = ss.load(doc(("sampler", {"type": "random", "seed": 5})), source="s")

    def first(worker: int) -> dict[str, Any]:
        study = optuna.create_study(sampler=ss.make_sampler(spec, worker_index=worker))
        return ss.suggest(study.ask(), spec)

    assert first(0) == first(0)
    assert first(0) != first(1)


def test_make_pruner() -> None:
    median = ss.make_pruner(ss.load(doc(("pruner", {"type": "median", "warmup_steps": 2,
                                                    "startup_trials": 4})), source="s"))
    assert isinstance(median, optuna.pruners.MedianPruner)
    assert (median._n_startup_trials, median._n_warmup_steps) == (4, 2)
    default = ss.make_pruner(valid())
    assert (default._n_startup_trials, default._n_warmup_steps) == (5, 0)
    hb = ss.make_pruner(ss.load(doc(("pruner", {"type": "hyperband", "min_resource": 2})),
                                source="s"))
    assert isinstance(hb, optuna.pruners.HyperbandPruner)
    assert (hb._min_resource, hb._max_resource, hb._reduction_factor) == (2, 5, 3)
    assert isinstance(ss.make_pruner(ss.load(doc(("pruner", "none")), source="s")),
                      optuna.pruners.NopPruner)


def test_suggest_stays_in_the_space_and_pruning_works() -> None:
    spec = valid()
    study = optuna.create_study(direction="maximize", sampler=ss.make_sampler(spec),
                                pruner=ss.make_pruner(spec))

    def objective(trial: optuna.Trial) -> float:
        v = ss.suggest(trial, spec)
        assert 1e-4 <= v["learning_rate"] <= 1e-2 and v["batch_size"] in (32, 64, 128)
        assert isinstance(v["dense"], int) and 32 <= v["dense"] <= 256
        assert round(v["dropout"] * 10, 9) == round(v["dropout"] * 10)
        for epoch in range(1, spec.epochs + 1):
            trial.report(v["learning_rate"] * epoch, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return v["learning_rate"]

    study.optimize(objective, n_trials=15)
    assert len(study.trials) == 15
    assert set(ss.study_distributions(study)) == {q.name for q in spec.search_space}
    assert ss.check_compatible(spec, ss.study_distributions(study)) == []


def test_reusing_a_study_with_a_different_kind_names_the_param_and_both_kinds() -> None:
    spec = valid()
    found = ss.check_compatible(spec, {"dense": FloatDistribution(32.0, 256.0),
                                       "other": IntDistribution(1, 3)})
    assert len(found) == 1
    assert found[0].startswith("search_space.dense: the existing study records dense as "
                               "FloatDistribution")
    assert "this spec makes it IntDistribution" in found[0]
    assert "Cannot set different distribution kind to the same parameter name" in found[0]


def test_reusing_a_study_with_other_log_or_choices() -> None:
    spec = valid()
    log = ss.check_compatible(spec, {"learning_rate": FloatDistribution(1e-4, 1e-2)})
    assert "different log configuration" in log[0]
    cats = ss.check_compatible(spec, {"batch_size": CategoricalDistribution([16, 32])})
    assert "search_space.batch_size" in cats[0] and "dynamic value space" in cats[0]
    # a changed range of the same kind is allowed by Optuna
    assert ss.check_compatible(spec, {"dense": IntDistribution(16, 512, log=True)}) == []


def test_the_prediction_matches_optuna_itself() -> None:
    spec = valid()
    study = optuna.create_study()
    first = study.ask()
    first.suggest_float("dense", 1.0, 512.0)
    study.tell(first, 0.5)
    assert ss.check_compatible(spec, ss.study_distributions(study))
    with pytest.raises(ValueError, match="Cannot set different distribution kind"):
        study.ask(fixed_distributions=ss.distributions(spec))


# --------------------------------------------------------------------------- warnings, JSON


@pytest.mark.parametrize("changes, phrase", [
    ([("budget.max_trials", 8)], "this sweep is a random search"),
    ([("objective", {"metric": "val_loss", "direction": "maximize"})], "losses are usually"),
    ([("objective", {"metric": "val_accuracy", "direction": "minimize"})], "accuracies"),
    ([("pruner", {"type": "median", "warmup_steps": 5})], "no trial is ever pruned"),
    ([(f"{SPACE}.dropout.high", 0.45)], "the largest value will be 0.4"),
    ([(f"{SPACE}.dropout.low", 0.5)], "low == high"),
    ([(f"{SPACE}.batch_size.choices", [64])], "a single choice is constant"),
    ([("sampler", "cmaes")], "cmaes cannot model categorical params (batch_size)"),
    ([("parallelism", 41), ("budget.max_trials", 100)], "PgBouncer"),
])
def test_warnings(monkeypatch: pytest.MonkeyPatch, changes: list[tuple[str, Any]],
                  phrase: str) -> None:
    monkeypatch.setattr(ss.importlib.util, "find_spec", lambda name, *a: object())
    _, warns = ss.resolve(doc(*changes), source="s")
    assert any(phrase in w for w in warns), warns


def test_a_full_spec_round_trips() -> None:
    text = doc(("namespace", "ml"), ("cpu", 2), ("memory", "4Gi"), ("mode", "pod-per-trial"),
               ("workers_per_trial", 2), ("gpus", 1),
               ("sampler", {"type": "random", "seed": 1}),
               ("pruner", {"type": "hyperband", "min_resource": 1, "reduction_factor": 2}),
               ("storage", "postgresql+psycopg://optuna@db.ml.svc/optuna"),
               ("promotion", {"deployment": "digits", "min_delta": 0.01, "auto_promote": True}),
               ("budget", {"max_trials": 20, "max_failed": 2, "timeout": "2h"}),
               ("abort_after_identical_failures", 0),
               ("objective", {"metric": "val_loss", "direction": "minimize"}))
    spec, _ = ss.resolve(text, source="s")
    assert spec.cpu == "2" and spec.budget.timeout == 7200.0
    stored = json.loads(json.dumps(ss.to_dict(spec)))
    assert ss.from_dict(stored) == spec
    assert stored["pruner"] == {"type": "hyperband", "min_resource": 1, "reduction_factor": 2}
    assert ss.validate(ss.from_dict(stored)) == []


def test_from_dict_reports_structure_problems() -> None:
    with pytest.raises(SpecError) as info:
        ss.from_dict({**yaml.safe_load(doc()), "epochs": "five", "colour": "red"})
    assert {field_of(m) for m in info.value.problems} == {"epochs", "colour"}
