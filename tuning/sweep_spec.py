"""Sweep specs: the YAML a user writes for `fleet sweep`, parsed and validated completely.

A spec names the trainer (code + data, as `fleet train`), a search space, the objective, the
budgets, the pods, the sampler and pruner, the storage and an optional promotion target.
Everything here is pure: nothing touches Kubernetes or a database, so a command can load,
override and validate a spec and exit 2 before it creates anything (see `resolve`).

Layers:

- `load(text, source=)` / `from_dict(d)`: structure only (YAML syntax, duplicate keys, unknown
  keys with "did you mean", wrong types); raises `SpecError` with every such problem.
- `validate(spec)`: every semantic problem of a spec (also one built in Python), as messages
  `"<field path>: <what is wrong>; <what to do>"`. `warnings(spec)`: things that are allowed
  but probably not meant (parallelism clamped to max_trials, a grid smaller than the budget...).
- `resolve(text, source=, **overrides)`: load + CLI overrides + validate + `finalize`, raising
  one `SpecError` with all problems of both kinds (messages then carry `source:line:`).
- `distributions`, `check_compatible`, `make_sampler`, `make_pruner`, `suggest`: the Optuna side.
- `to_dict` / `from_dict`: the JSON form stored on Kubernetes objects and in the study's user
  attrs (`from_dict(to_dict(s)) == s`).

YAML decisions:

- Numbers like `1e-4` are floats (YAML 1.2); PyYAML alone would read them as strings.
- Categorical choices must be null, bool, int, float or str (what Optuna stores). A YAML date
  or timestamp (`2024-01-01`) is rejected with "quote it", not silently turned into a string;
  lists and mappings are rejected (pass a JSON string and decode it in the trainer).
- SQL-looking strings (`"'; DROP TABLE trials; --"`) are ordinary strings: stored verbatim.
- The storage URL may not hold a password: the spec is stored verbatim on Kubernetes objects
  and in the study. Put a URL with a password in $FLEET_OPTUNA_STORAGE (a Secret in the pods)
  or use PGPASSWORD / ~/.pgpass.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import difflib
import importlib.util
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    import optuna

Choice = None | bool | int | float | str
ParamValue = bool | int | float | str

# Sweep names name the pool Job (`<name>`, pods `<name>-<index>`) and, in pod-per-trial mode,
# one Job per trial `<name>-<trial number>` that goes through `tuning.jobs` (names <= 52 there,
# which itself keeps room for `-workers` Services and `-<index>` hostnames). 40 leaves 12
# characters for `-<trial number>`, so every derived name stays a valid DNS label.
JOB_NAME_LIMIT = 52  # tuning.jobs.MAX_NAME (a test keeps them equal)
TRIAL_SUFFIX_ROOM = 12
MAX_NAME = JOB_NAME_LIMIT - TRIAL_SUFFIX_ROOM
MAX_WORKERS = 64  # tuning.jobs.MAX_WORKERS
MAX_EPOCHS = 100_000
MAX_SEED = 2**32 - 1  # numpy's RandomState limit (Optuna samplers seed it)

PARAM_TYPES = ("float", "int", "categorical")
DIRECTIONS = ("maximize", "minimize")
SAMPLERS = ("tpe", "random", "gp", "cmaes", "grid")
PRUNERS = ("median", "hyperband", "none")
MODES = ("pool", "pod-per-trial")
# Only PostgreSQL: the controller's own tables rely on advisory locks and UPDATE ... RETURNING
# (the exact trial cap), and Optuna's heartbeats need an RDB shared by every pod.
STORAGE_DIALECTS = ("postgresql", "postgresql+psycopg", "postgresql+psycopg2")
STORAGE_ENV = "FLEET_OPTUNA_STORAGE"
# What a sampler imports when it first samples (optuna/_gp, optuna/samplers/_cmaes.py).
SAMPLER_PACKAGES: dict[str, tuple[str, ...]] = {"gp": ("torch", "scipy"), "cmaes": ("cmaes",)}
_PIP_NAMES = {"psycopg": "psycopg[binary]", "psycopg2": "psycopg2-binary"}
# Optuna 5 defaults that the warnings refer to.
TPE_STARTUP_TRIALS = 10  # TPESampler(n_startup_trials=10)
GP_STARTUP_TRIALS = 10  # GPSampler(n_startup_trials=10)
MANY_PODS = 40  # about 2 DB connections per pod against PostgreSQL's usual max_connections=100

DEFAULT_METRIC = "val_accuracy"
DEFAULT_EPOCHS = 10
DEFAULT_IDENTICAL_FAILURES = 3
DEFAULT_STARTUP_TRIALS = 5  # MedianPruner(n_startup_trials=5)
DEFAULT_WARMUP_STEPS = 0  # MedianPruner(n_warmup_steps=0)
DEFAULT_MIN_RESOURCE = 1
DEFAULT_REDUCTION_FACTOR = 3

_NAME_CHARS = re.compile(r"^[a-z0-9-]*$")
_PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,62}$")  # as tuning.jobs
_QUANTITY = re.compile(r"^([0-9]+(\.[0-9]+)?|\.[0-9]+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
_URI = re.compile(r"^(/|\./|\.\./|file://|hdfs://|webhdfs://)")
_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


# --------------------------------------------------------------------------- the spec


@dataclass(frozen=True)
class Param:
    """One searched parameter. float/int use low, high, log, step; categorical uses choices."""

    name: str
    type: str  # float | int | categorical
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None  # None: continuous float / int step 1
    choices: tuple[Choice, ...] = ()


@dataclass(frozen=True)
class Objective:
    metric: str = DEFAULT_METRIC  # a metric the trainer reports each epoch
    direction: str = "maximize"  # maximize | minimize


@dataclass(frozen=True)
class Budget:
    max_trials: int | None = None  # required: exactly this many trials are created
    max_failed: int | None = None  # None: max(3, max_trials // 4); see effective_max_failed
    timeout: float | None = None  # seconds; no new trials after it

    @property
    def effective_max_failed(self) -> int:
        if self.max_failed is not None:
            return self.max_failed
        return max(3, (self.max_trials or 0) // 4)


@dataclass(frozen=True)
class Sampler:
    type: str = "tpe"  # tpe | random | gp | cmaes | grid
    seed: int | None = None  # worker i samples with seed + i (see make_sampler)


@dataclass(frozen=True)
class Pruner:
    type: str = "median"  # median | hyperband | none
    warmup_steps: int = DEFAULT_WARMUP_STEPS  # median: Optuna's n_warmup_steps
    startup_trials: int = DEFAULT_STARTUP_TRIALS  # median: Optuna's n_startup_trials
    min_resource: int = DEFAULT_MIN_RESOURCE  # hyperband (max_resource is the epochs)
    reduction_factor: int = DEFAULT_REDUCTION_FACTOR  # hyperband


@dataclass(frozen=True)
class Promotion:
    deployment: str
    min_delta: float = 0.0
    auto_promote: bool = False


@dataclass(frozen=True)
class SweepSpec:
    name: str
    code: str  # a wheel or sdist, as `fleet train --code`
    data: str  # as `fleet train --data`
    output: str  # model store base for the trials' models, as `fleet train --output`
    search_space: tuple[Param, ...]
    budget: Budget = Budget()
    namespace: str | None = None  # None: the kubeconfig context's
    epochs: int = DEFAULT_EPOCHS
    params: tuple[tuple[str, ParamValue], ...] = ()  # fixed trainer params, sorted by name
    objective: Objective = Objective()
    parallelism: int = 1  # trials at once (pool mode: worker pods)
    gpus: int = 0  # nvidia.com/gpu per pod
    cpu: str | None = None
    memory: str | None = None
    sampler: Sampler = Sampler()
    pruner: Pruner = Pruner()
    storage: str | None = None  # None: $FLEET_OPTUNA_STORAGE
    promotion: Promotion | None = None
    abort_after_identical_failures: int = DEFAULT_IDENTICAL_FAILURES  # 0: never abort
    mode: str = "pool"  # pool | pod-per-trial
    workers_per_trial: int = 1  # > 1 (distributed trials) only with pod-per-trial

    @property
    def effective_parallelism(self) -> int:
        """parallelism clamped to max_trials (more pods than trials would only idle)."""
        if self.budget.max_trials and self.budget.max_trials > 0:
            return min(self.parallelism, self.budget.max_trials)
        return self.parallelism

    @property
    def pods(self) -> int:
        """Trial pods running at once: parallelism x workers_per_trial."""
        return self.effective_parallelism * max(1, self.workers_per_trial)

    def param(self, name: str) -> Param:
        return next(p for p in self.search_space if p.name == name)


class SpecError(ValueError):
    """A spec that cannot be used; `problems` holds every message."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)


# --------------------------------------------------------------------------- keys

TOP_KEYS = ("name", "namespace", "code", "data", "output", "epochs", "params", "search_space",
            "objective", "budget", "parallelism", "gpus", "cpu", "memory", "sampler", "pruner",
            "storage", "promotion", "abort_after_identical_failures", "mode",
            "workers_per_trial")
PARAM_KEYS = ("type", "low", "high", "log", "step", "choices")
OBJECTIVE_KEYS = ("metric", "direction")
BUDGET_KEYS = ("max_trials", "max_failed", "timeout")
SAMPLER_KEYS = ("type", "seed")
PRUNER_KEYS = ("type", "warmup_steps", "startup_trials", "min_resource", "reduction_factor")
PRUNER_FIELDS = {"median": ("warmup_steps", "startup_trials"),
                 "hyperband": ("min_resource", "reduction_factor"), "none": ()}
PROMOTION_KEYS = ("deployment", "min_delta", "auto_promote")
_NESTED = {**{k: "objective" for k in OBJECTIVE_KEYS}, **{k: "budget" for k in BUDGET_KEYS},
           **{k: "promotion" for k in PROMOTION_KEYS},
           **{k: "pruner" for k in PRUNER_KEYS if k != "type"}, "seed": "sampler"}
_ALIASES = {"workers": "workers_per_trial", "gpu": "gpus", "gpus_per_pod": "gpus",
            "n_trials": "budget.max_trials", "trials": "budget.max_trials",
            "space": "search_space", "searchspace": "search_space", "search": "search_space",
            "parameters": "search_space (searched) or params (fixed)",
            "budgets": "budget", "image": "(no such field: the trainer image is a command flag)"}


def _suggest(word: str, options: tuple[str, ...] | list[str]) -> str:
    match = difflib.get_close_matches(word.lower(), list(options), n=1, cutoff=0.6)
    return f"; did you mean {match[0]!r}?" if match else ""


def _one_of(options: tuple[str, ...]) -> str:
    return ", ".join(options[:-1]) + f" or {options[-1]}" if len(options) > 1 else options[0]


# --------------------------------------------------------------------------- YAML loading


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads YAML 1.2 floats such as 1e-4 and 1.0e5 as numbers."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."))


def _walk(node: yaml.Node, path: str, lines: dict[str, int], dups: list[tuple[str, int, int]],
          seen: set[int]) -> None:
    """Record the line of every key path and every duplicate key (once per node: aliases)."""
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        first: dict[str, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node,
                                                                           yaml.ScalarNode):
                continue
            key = str(key_node.value)
            child = f"{path}.{key}" if path else key
            line = key_node.start_mark.line + 1
            if key in first:
                dups.append((child, first[key], line))
            first[key] = line
            lines[child] = line  # the last occurrence is the one YAML keeps
            _walk(value_node, child, lines, dups, seen)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            child = f"{path}[{i}]"
            lines[child] = item.start_mark.line + 1
            _walk(item, child, lines, dups, seen)


class _Ctx:
    def __init__(self, source: str, lines: dict[str, int] | None = None) -> None:
        self.source = source
        self.lines = lines or {}
        self.problems: list[tuple[str, str]] = []
        self.bad: set[str] = set()
        self.partial_space = False

    def err(self, path: str, message: str, *, bad: bool = True) -> None:
        """bad: the field fell back to its default, so its semantic checks would mislead."""
        self.problems.append((path, message))
        if bad:
            self.bad.add(path)

    def line(self, path: str) -> int | None:
        while path:
            if path in self.lines:
                return self.lines[path]
            cut = max(path.rfind("."), path.rfind("["))
            path = path[:cut] if cut > 0 else ""
        return None

    def format(self, path: str, message: str, note: str = "") -> str:
        line = self.line(path) if not note else None
        where = f"{self.source}:{line}: " if line else ""
        return f"{where}{path}: {message}{note}"


def _yaml_data(text: str, source: str) -> tuple[Any, _Ctx]:
    lines: dict[str, int] = {}
    dups: list[tuple[str, int, int]] = []
    loader = _Loader(text)
    loader.name = source
    try:
        node = loader.get_single_node()
        if node is not None:
            _walk(node, "", lines, dups, set())
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        raise SpecError([f"{source}: not valid YAML: {exc}"]) from None
    finally:
        loader.dispose()
    ctx = _Ctx(source, lines)
    for path, first, again in dups:
        ctx.err(path, f"defined twice (lines {first} and {again}); YAML would silently keep "
                      "only the last one, so remove or rename one of them", bad=False)
    return data, ctx


# --------------------------------------------------------------------------- parsing


def _what(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"{value!r} (a boolean)"
    if isinstance(value, int):
        return f"{value!r} (an integer)"
    if isinstance(value, float):
        return f"{value!r} (a number)"
    if isinstance(value, str):
        return f"{value!r} (a string)"
    if isinstance(value, datetime.date):
        return f"{value.isoformat()} (a YAML date; quote it to make it a string)"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"{value!r} ({type(value).__name__})"


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _keys(ctx: _Ctx, data: dict[Any, Any], path: str, known: tuple[str, ...]) -> None:
    for key in data:
        if key in known:
            continue
        child = f"{path}.{key}" if path else str(key)
        hint = _suggest(str(key), known)
        if not path and not hint:
            if key in _NESTED:
                hint = f"; it belongs under {_NESTED[key]}: ({_NESTED[key]}.{key})"
            elif key in _ALIASES:
                hint = f"; did you mean {_ALIASES[key]}?"
        where = f"in {path}" if path else "at the top level"
        known_list = ", ".join(known)
        ctx.err(child, f"unknown key {where}{hint or f' (known: {known_list})'}", bad=False)


def _field(ctx: _Ctx, data: dict[str, Any], key: str, path: str, kind: str,
           default: Any = None) -> Any:
    """data[key] checked against kind (str, int, num, bool, quantity); default when absent."""
    full = f"{path}.{key}" if path else key
    if key not in data or data[key] is None:
        return default
    value = data[key]
    ok = {"str": lambda v: isinstance(v, str), "int": _is_int, "num": _is_num,
          "bool": lambda v: isinstance(v, bool),
          "quantity": lambda v: isinstance(v, str) or _is_num(v)}[kind](value)
    if not ok:
        want = {"str": "a string", "int": "an integer", "num": "a number",
                "bool": "true or false", "quantity": "a Kubernetes quantity such as 2 or 4Gi"}
        ctx.err(full, f"expected {want[kind]}, got {_what(value)}")
        return default
    if kind == "num":
        return float(value)
    if kind == "quantity" and not isinstance(value, str):
        return f"{value:g}" if isinstance(value, float) else str(value)
    return value


def _block(ctx: _Ctx, data: dict[str, Any], key: str, known: tuple[str, ...],
           shorthand: str | None = None) -> dict[str, Any] | None:
    """A nested mapping (or, with shorthand, a bare string meaning {shorthand: value})."""
    if key not in data or data[key] is None:
        return None
    value = data[key]
    if shorthand and isinstance(value, str):
        return {shorthand: value}
    if not isinstance(value, dict):
        alt = f" or a {shorthand} name" if shorthand else ""
        ctx.err(key, f"expected a mapping{alt}, got {_what(value)}")
        return None
    _keys(ctx, value, key, known)
    return value


def _duration(ctx: _Ctx, value: Any, path: str) -> float | None:
    if value is None:
        return None
    if _is_num(value):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            return float(text)
        except ValueError:
            pass
        m = _DURATION.match(text)
        if m and any(m.groups()):
            d, h, mi, s = (int(g or 0) for g in m.groups())
            return float(((d * 24 + h) * 60 + mi) * 60 + s)
    ctx.err(path, f"expected seconds or a duration such as 90m, 2h or 1h30m, got {_what(value)}")
    return None


def _param(ctx: _Ctx, name: str, raw: Any) -> Param | None:
    path = f"search_space.{name}"
    if isinstance(raw, list):  # shorthand: a list of choices
        return Param(name=name, type="categorical", choices=tuple(raw))
    if not isinstance(raw, dict):
        ctx.err(path, f"expected a mapping such as {{type: float, low: 0.001, high: 0.1}} or a "
                      f"list of choices, got {_what(raw)}; a fixed value belongs under params")
        return None
    _keys(ctx, raw, path, PARAM_KEYS)
    type_ = raw.get("type")
    if type_ is None:
        hint = "categorical (it has choices)" if "choices" in raw else _one_of(PARAM_TYPES)
        ctx.err(f"{path}.type", f"required: {hint}")
        return None
    if not isinstance(type_, str):
        ctx.err(f"{path}.type", f"expected {_one_of(PARAM_TYPES)}, got {_what(type_)}")
        return None
    bound = "int" if type_ == "int" else "num"
    low = _field(ctx, raw, "low", path, bound)
    high = _field(ctx, raw, "high", path, bound)
    step = _field(ctx, raw, "step", path, bound)
    log = _field(ctx, raw, "log", path, "bool", False)
    choices: tuple[Any, ...] = ()
    if raw.get("choices") is not None:
        if isinstance(raw["choices"], list):
            choices = tuple(raw["choices"])
        else:
            ctx.err(f"{path}.choices", f"expected a list, got {_what(raw['choices'])}")
    return Param(name=name, type=type_, low=low, high=high, log=log, step=step, choices=choices)


def _parse(data: Any, ctx: _Ctx) -> SweepSpec:
    if data is None:
        ctx.err("(spec)", "the spec is empty; `fleet sweep example` prints a complete one")
        data = {}
    elif not isinstance(data, dict):
        ctx.err("(spec)", f"expected a mapping of fields, got {_what(data)}; "
                          "`fleet sweep example` prints a complete spec")
        data = {}
    _keys(ctx, data, "", TOP_KEYS)
    params: dict[str, ParamValue] = {}
    raw_params = data.get("params")
    if isinstance(raw_params, dict):
        params = dict(raw_params)
    elif raw_params is not None:
        ctx.err("params", "expected a mapping of fixed trainer parameters, got "
                          f"{_what(raw_params)}")
    space: list[Param] = []
    raw_space = data.get("search_space")
    if isinstance(raw_space, dict):
        for key, raw in raw_space.items():
            param = _param(ctx, str(key), raw)
            if param is None:
                ctx.partial_space = True
            else:
                space.append(param)
    elif raw_space is not None:
        ctx.err("search_space", f"expected a mapping of parameter name to its range, "
                                f"got {_what(raw_space)}")
        ctx.partial_space = True

    obj = _block(ctx, data, "objective", OBJECTIVE_KEYS) or {}
    objective = Objective(metric=_field(ctx, obj, "metric", "objective", "str", DEFAULT_METRIC),
                          direction=_field(ctx, obj, "direction", "objective", "str",
                                           "maximize"))
    bud = _block(ctx, data, "budget", BUDGET_KEYS) or {}
    budget = Budget(max_trials=_field(ctx, bud, "max_trials", "budget", "int"),
                    max_failed=_field(ctx, bud, "max_failed", "budget", "int"),
                    timeout=_duration(ctx, bud.get("timeout"), "budget.timeout"))
    smp = _block(ctx, data, "sampler", SAMPLER_KEYS, shorthand="type") or {}
    sampler = Sampler(type=_field(ctx, smp, "type", "sampler", "str", "tpe"),
                      seed=_field(ctx, smp, "seed", "sampler", "int"))
    prn = _block(ctx, data, "pruner", PRUNER_KEYS, shorthand="type") or {}
    pruner = Pruner(type=_field(ctx, prn, "type", "pruner", "str", "median"),
                    **{k: _field(ctx, prn, k, "pruner", "int", getattr(Pruner, k))
                       for k in PRUNER_KEYS if k != "type"})
    for key in PRUNER_KEYS[1:]:
        if key in prn and pruner.type in PRUNER_FIELDS and key not in PRUNER_FIELDS[pruner.type]:
            takers = [t for t, fields in PRUNER_FIELDS.items() if key in fields]
            ctx.err(f"pruner.{key}", f"applies only to the {' or '.join(takers)} pruner, not "
                                     f"{pruner.type}; remove it")
    promotion = None
    pro = _block(ctx, data, "promotion", PROMOTION_KEYS)
    if pro is not None:
        promotion = Promotion(
            deployment=_field(ctx, pro, "deployment", "promotion", "str", ""),
            min_delta=_field(ctx, pro, "min_delta", "promotion", "num", 0.0),
            auto_promote=_field(ctx, pro, "auto_promote", "promotion", "bool", False))
    return SweepSpec(
        name=_field(ctx, data, "name", "", "str", ""),
        namespace=_field(ctx, data, "namespace", "", "str"),
        code=_field(ctx, data, "code", "", "str", ""),
        data=_field(ctx, data, "data", "", "str", ""),
        output=_field(ctx, data, "output", "", "str", ""),
        epochs=_field(ctx, data, "epochs", "", "int", DEFAULT_EPOCHS),
        params=tuple(sorted((str(k), v) for k, v in params.items())),
        search_space=tuple(space),
        objective=objective, budget=budget,
        parallelism=_field(ctx, data, "parallelism", "", "int", 1),
        gpus=_field(ctx, data, "gpus", "", "int", 0),
        cpu=_field(ctx, data, "cpu", "", "quantity"),
        memory=_field(ctx, data, "memory", "", "quantity"),
        sampler=sampler, pruner=pruner,
        storage=_field(ctx, data, "storage", "", "str"),
        promotion=promotion,
        abort_after_identical_failures=_field(ctx, data, "abort_after_identical_failures", "",
                                              "int", DEFAULT_IDENTICAL_FAILURES),
        mode=_field(ctx, data, "mode", "", "str", "pool"),
        workers_per_trial=_field(ctx, data, "workers_per_trial", "", "int", 1),
    )


def load(text: str, *, source: str) -> SweepSpec:
    """Parse a YAML spec; `SpecError` lists every structural problem (validate() the rest)."""
    data, ctx = _yaml_data(text, source)
    spec = _parse(data, ctx)
    if ctx.problems:
        raise SpecError([ctx.format(p, m) for p, m in ctx.problems])
    return spec


def from_dict(data: Mapping[str, Any], *, source: str = "spec") -> SweepSpec:
    """The inverse of `to_dict` (also any dict shaped like the YAML); SpecError on structure."""
    ctx = _Ctx(source)
    spec = _parse(dict(data) if isinstance(data, Mapping) else data, ctx)
    if ctx.problems:
        raise SpecError([ctx.format(p, m) for p, m in ctx.problems])
    return spec


# --------------------------------------------------------------------------- validation


def _label_reasons(value: str, limit: int, *, letter_first: bool) -> list[str]:
    if value == "":
        return ["is empty"]
    reasons = []
    if any(c.isspace() for c in value):
        reasons.append("contains whitespace")
    if any("A" <= c <= "Z" for c in value):
        reasons.append("contains uppercase letters")
    for ch in "_.":
        if ch in value:
            reasons.append(f"contains {ch!r}")
    if any(not c.isascii() for c in value):
        reasons.append("contains non-ASCII characters")
    other = sorted({c for c in value if c.isascii() and not c.isspace() and c not in "_."
                    and not ("A" <= c <= "Z") and not _NAME_CHARS.match(c)})
    if other:
        reasons.append("contains " + ", ".join(repr(c) for c in other))
    if value.startswith("-"):
        reasons.append("starts with '-'")
    elif letter_first and not value[0].isalpha():
        reasons.append("does not start with a letter")
    if value.endswith("-"):
        reasons.append("ends with '-'")
    if len(value) > limit:
        reasons.append(f"is {len(value)} characters long, more than {limit}")
    return reasons


def _problems(spec: SweepSpec, *, grid_checks: bool = True) -> list[tuple[str, str]]:
    p: list[tuple[str, str]] = []

    def err(path: str, message: str) -> None:
        p.append((path, message))

    # names
    reasons = _label_reasons(spec.name, MAX_NAME, letter_first=True)
    if spec.name == "":
        err("name", "required; give the sweep a name (or pass NAME on the command line)")
    elif reasons:
        err("name", f"{spec.name!r} {', '.join(reasons)}; use lowercase letters, digits and "
                    f"'-', starting with a letter and ending with a letter or digit, at most "
                    f"{MAX_NAME} characters (it names the sweep's Jobs and pods, whose "
                    f"`<job>-<index>` hostnames and `-<trial>` suffixes must stay DNS labels)")
    if spec.namespace is not None:
        reasons = _label_reasons(spec.namespace, 63, letter_first=False)
        if reasons:
            err("namespace", f"{spec.namespace!r} {', '.join(reasons)}; a namespace is a DNS "
                             "label (lowercase letters, digits, '-', at most 63 characters)")
    # trainer inputs
    for key in ("code", "data", "output"):
        uri = getattr(spec, key)
        if not uri and key == "output":
            err(key, "required (as `fleet train --output`): the model store base the trials' "
                     "models are written under")
        elif not uri:
            err(key, f"required (as `fleet train --{key}`); `fleet train publish-example --to "
                     "URI` uploads the digits example and prints its code and data URIs")
        elif not _URI.match(uri):
            err(key, f"{uri!r} must be an absolute path, file://, hdfs:// or webhdfs:// URI "
                     "(the pods read it, so it must name shared storage)")
    if spec.code and not spec.code.rstrip("/").endswith((".whl", ".tar.gz", ".zip")):
        err("code", f"{spec.code!r} must name a wheel or sdist (.whl, .tar.gz, .zip); "
                    "`fleet train publish-example --to URI` uploads one")
    if not 1 <= spec.epochs <= MAX_EPOCHS:
        err("epochs", f"{spec.epochs} must be between 1 and {MAX_EPOCHS}")
    names = {q.name for q in spec.search_space}
    for key, value in spec.params:
        path = f"params.{key}"
        if not _PARAM_NAME.match(key):
            err(path, "the name must be identifier-like (letters, digits, '_', '.', '-', "
                      "starting with a letter or '_', at most 63 characters)")
        if key in names:
            err(path, f"{key} is also in search_space; a parameter is either fixed (params) or "
                      "searched (search_space), remove one")
        if value is None:
            err(path, "null is not a value; remove the key to use the trainer's default")
        elif isinstance(value, datetime.date):
            err(path, f"{_what(value)}; trainer parameters are bool, int, float or string")
        elif not isinstance(value, bool | int | float | str):
            err(path, f"expected a single value (bool, int, float or string), got "
                      f"{_what(value)}; pass structured values as a JSON string")
        elif isinstance(value, float) and not math.isfinite(value):
            err(path, f"{value} is not a finite number")
    # search space
    if not spec.search_space:
        err("search_space", "empty; a sweep needs at least one parameter to search (fixed ones "
                            "go under params)")
    seen: set[str] = set()
    for q in spec.search_space:
        path = f"search_space.{q.name}"
        if q.name in seen:
            err(path, "defined twice; parameter names must be unique")
        seen.add(q.name)
        if not _PARAM_NAME.match(q.name):
            err(path, "the name must be identifier-like (letters, digits, '_', '.', '-', "
                      "starting with a letter or '_', at most 63 characters)")
        p.extend(_param_problems(q, path))
    # objective
    if not spec.objective.metric.strip():
        err("objective.metric", f"empty; name a metric the trainer reports each epoch (e.g. "
                                f"{DEFAULT_METRIC})")
    if spec.objective.direction not in DIRECTIONS:
        err("objective.direction", f"{spec.objective.direction!r} is not {_one_of(DIRECTIONS)}"
                                   f"{_suggest(spec.objective.direction, DIRECTIONS)}")
    # budgets and pods
    b = spec.budget
    if b.max_trials is None:
        err("budget.max_trials", "required: the exact number of trials to create (or pass "
                                 "--max-trials)")
    elif b.max_trials <= 0:
        err("budget.max_trials", f"{b.max_trials} must be >= 1")
    if b.max_failed is not None and b.max_failed < 0:
        err("budget.max_failed", f"{b.max_failed} must be >= 0 (0: stop at the first failed "
                                 "trial; leave it out for max(3, max_trials // 4))")
    if b.timeout is not None and not (math.isfinite(b.timeout) and b.timeout > 0):
        err("budget.timeout", f"{b.timeout:g} must be a positive duration (e.g. 2h); leave it "
                              "out for no time limit")
    if spec.parallelism <= 0:
        err("parallelism", f"{spec.parallelism} must be >= 1 (the trials run at once)")
    if spec.gpus < 0:
        err("gpus", f"{spec.gpus} must be >= 0 (nvidia.com/gpu per pod)")
    for key in ("cpu", "memory"):
        q = getattr(spec, key)
        if q is not None and not _QUANTITY.match(q):
            err(key, f"{q!r} is not a Kubernetes quantity (e.g. 500m, 2, 1Gi)")
    if spec.mode not in MODES:
        err("mode", f"{spec.mode!r} is not {_one_of(MODES)}{_suggest(spec.mode, MODES)}")
    if not 1 <= spec.workers_per_trial <= MAX_WORKERS:
        err("workers_per_trial", f"{spec.workers_per_trial} must be between 1 and {MAX_WORKERS}")
    elif spec.workers_per_trial > 1 and spec.mode != "pod-per-trial":
        err("workers_per_trial", f"{spec.workers_per_trial} workers per trial need mode: "
                                 f"pod-per-trial (a distributed trial is its own Indexed Job); "
                                 f"mode is {spec.mode!r}")
    if spec.abort_after_identical_failures < 0:
        err("abort_after_identical_failures",
            f"{spec.abort_after_identical_failures} must be >= 0 (0: never abort)")
    # sampler and pruner
    s = spec.sampler
    if s.type not in SAMPLERS:
        err("sampler.type", f"{s.type!r} is not {_one_of(SAMPLERS)}{_suggest(s.type, SAMPLERS)}")
    for package in SAMPLER_PACKAGES.get(s.type, ()):
        if importlib.util.find_spec(package) is None:
            err("sampler.type", f"the {s.type} sampler needs the Python package {package!r}, "
                                f"which is not installed (pip install {package}); install it "
                                "or choose another sampler (tpe is the default)")
    if s.seed is not None and not 0 <= s.seed <= MAX_SEED:
        err("sampler.seed", f"{s.seed} must be between 0 and {MAX_SEED}")
    if s.type == "grid" and grid_checks:
        own = {path.split(".")[1] for path, _ in p if path.startswith("search_space.")}
        p.extend(_grid_problems(spec, skip=own))
    r = spec.pruner
    if r.type not in PRUNERS:
        err("pruner.type", f"{r.type!r} is not {_one_of(PRUNERS)}{_suggest(r.type, PRUNERS)}")
    elif r.type == "median":
        if r.warmup_steps < 0:
            err("pruner.warmup_steps", f"{r.warmup_steps} must be >= 0")
        if r.startup_trials < 0:
            err("pruner.startup_trials", f"{r.startup_trials} must be >= 0")
    elif r.type == "hyperband":
        if not 1 <= r.min_resource <= max(1, spec.epochs):
            err("pruner.min_resource", f"{r.min_resource} must be between 1 and epochs "
                                       f"({spec.epochs}), the hyperband max_resource")
        if r.reduction_factor < 2:
            err("pruner.reduction_factor", f"{r.reduction_factor} must be >= 2")
    # storage
    if spec.storage is not None:
        p.extend(_storage_problems(spec.storage, "storage", allow_password=False))
    # promotion
    if spec.promotion is not None:
        pr = spec.promotion
        if not pr.deployment:
            err("promotion.deployment", "required: the serving Deployment to promote to (or "
                                        "remove the promotion block)")
        else:
            reasons = _label_reasons(pr.deployment, 63, letter_first=True)
            if reasons:
                err("promotion.deployment", f"{pr.deployment!r} {', '.join(reasons)}; name a "
                                            "Deployment (a DNS label)")
        if not math.isfinite(pr.min_delta) or pr.min_delta < 0:
            err("promotion.min_delta", f"{pr.min_delta} must be a finite number >= 0")
    return p


def _param_problems(q: Param, path: str) -> list[tuple[str, str]]:
    p: list[tuple[str, str]] = []
    if q.type not in PARAM_TYPES:
        p.append((f"{path}.type", f"{q.type!r} is not {_one_of(PARAM_TYPES)}"
                                  f"{_suggest(q.type, PARAM_TYPES)}"))
        return p
    if q.type == "categorical":
        for key in ("low", "high", "step"):
            if getattr(q, key) is not None:
                p.append((f"{path}.{key}", f"only float and int params take {key}; a "
                                           "categorical param takes choices"))
        if q.log:
            p.append((f"{path}.log", "only float and int params take log"))
        if not q.choices:
            p.append((f"{path}.choices", "empty (or missing); list at least one choice"))
        keys: dict[tuple[str, Any], int] = {}
        for i, c in enumerate(q.choices):
            cpath = f"{path}.choices[{i}]"
            if isinstance(c, datetime.date):
                p.append((cpath, f"{_what(c)}: choices must be null, bool, int, float or string"))
            elif c is not None and not isinstance(c, bool | int | float | str):
                p.append((cpath, f"{_what(c)} is not a valid choice: choices must be null, bool, "
                                 "int, float or string (Optuna stores them as JSON scalars); "
                                 "pass a JSON string and decode it in the trainer"))
            elif isinstance(c, float) and not math.isfinite(c):
                p.append((cpath, f"{c} is not a finite number"))
            else:
                key = (type(c).__name__, c)
                if key in keys:
                    p.append((cpath, f"duplicate of choices[{keys[key]}]; list each choice once"))
                else:
                    keys[key] = i
        return p
    # float / int
    if q.choices:
        p.append((f"{path}.choices", f"only categorical params take choices; this one is "
                                     f"{q.type} (use low/high)"))
    kind = "an integer" if q.type == "int" else "a number"
    ok = _is_int if q.type == "int" else _is_num
    bounds_ok = True
    for key in ("low", "high"):
        v = getattr(q, key)
        if v is None:
            p.append((f"{path}.{key}", f"required for a {q.type} param"))
            bounds_ok = False
        elif not ok(v):
            p.append((f"{path}.{key}", f"expected {kind}, got {_what(v)}"))
            bounds_ok = False
        elif not math.isfinite(v):
            p.append((f"{path}.{key}", f"{v} is not a finite number; give a finite bound"))
            bounds_ok = False
    if bounds_ok:
        assert q.low is not None and q.high is not None
        if q.low > q.high:
            p.append((f"{path}.low", f"{q.low:g} is greater than high {q.high:g}; low must be "
                                     "<= high"))
            bounds_ok = False
        if q.log and q.type == "float" and q.low <= 0:
            p.append((f"{path}.low", f"{q.low:g} with log: true; a log-scaled float range "
                                     "needs low > 0 (e.g. 1e-5), or drop log"))
            bounds_ok = False
        if q.log and q.type == "int" and q.low < 1:
            p.append((f"{path}.low", f"{q.low} with log: true; a log-scaled int range needs "
                                     "low >= 1, or drop log"))
            bounds_ok = False
    if q.step is not None:
        spath = f"{path}.step"
        if not ok(q.step):
            p.append((spath, f"expected {kind}, got {_what(q.step)}"))
        elif not math.isfinite(q.step) or q.step <= 0:
            p.append((spath, f"{q.step:g} must be > 0"))
        elif q.log:
            p.append((spath, "cannot be combined with log: true (a log scale has no fixed "
                             "step); remove step or log"))
        elif bounds_ok and q.high > q.low and q.step > q.high - q.low:
            p.append((spath, f"{q.step:g} is larger than the range {q.low:g}..{q.high:g} "
                             f"(width {q.high - q.low:g}), so only low could be sampled; use a "
                             "step of at most the width"))
    return p


def grid_size(q: Param) -> int | None:
    """How many grid points a param has (None: not griddable, a continuous float)."""
    if q.type == "categorical":
        return len(q.choices)
    if not (_is_num(q.low) and _is_num(q.high) and math.isfinite(q.low)
            and math.isfinite(q.high) and q.low <= q.high):
        return None
    if q.step is not None and not (_is_num(q.step) and math.isfinite(q.step) and q.step > 0):
        return None
    if q.type == "int":
        return (int(q.high) - int(q.low)) // int(q.step or 1) + 1
    if q.step is None:
        return None
    d = decimal.Decimal
    return int((d(str(q.high)) - d(str(q.low))) // d(str(q.step))) + 1


def _grid_problems(spec: SweepSpec, skip: set[str]) -> list[tuple[str, str]]:
    """Griddability, then (only if every param is sound) the grid's size vs the budget."""
    p: list[tuple[str, str]] = []
    sizes = []
    for q in spec.search_space:
        if q.name in skip:
            continue
        n = grid_size(q) if q.type in PARAM_TYPES else None
        if n is None and q.type == "float" and q.log:
            p.append((f"search_space.{q.name}", "the grid sampler cannot use a log-scaled "
                                                "float; list its values as categorical choices "
                                                "(e.g. [0.0001, 0.001, 0.01])"))
        elif n is None and q.type == "float":
            p.append((f"search_space.{q.name}", "the grid sampler needs a step for float "
                                                "params (e.g. step: 0.1), or categorical choices"))
        elif n is not None:
            sizes.append((q.name, n))
    if p or skip or not sizes:
        return p
    total = math.prod(n for _, n in sizes)
    mt = spec.budget.max_trials
    if mt is not None and mt > 0 and total > mt:
        detail = " x ".join(f"{n} {name}" for name, n in sizes)
        p.append(("budget.max_trials", f"the grid needs {total} trials ({detail}) but "
                                       f"max_trials is {mt}; raise max_trials to {total} or "
                                       "coarsen the grid (bigger steps, fewer choices)"))
    return p


def _storage_problems(url: str, path: str, *, allow_password: bool) -> list[tuple[str, str]]:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    if not url.strip():
        return [(path, f"empty; leave it out to use ${STORAGE_ENV}")]
    try:
        u = make_url(url)
    except (ArgumentError, ValueError):
        return [(path, "not a database URL; expected e.g. "
                       "postgresql+psycopg://optuna@optuna-postgres.ml.svc:5432/optuna")]
    drv = u.drivername
    backend = u.get_backend_name()
    if backend == "sqlite":
        return [(path, f"{drv}:// cannot be shared by pods: a sweep always runs on several "
                       "pods (controller and workers on different hosts) and SQLite has no "
                       "row locks (\"database is locked\", broken on NFS); use PostgreSQL")]
    if drv == "postgres" or drv.startswith("postgres+"):
        return [(path, f"unknown dialect {drv!r}; did you mean "
                       f"{drv.replace('postgres', 'postgresql', 1)!r}?")]
    if backend in ("mysql", "mariadb"):
        return [(path, f"{drv}:// is not supported: the sweep controller's tables need "
                       "PostgreSQL (advisory locks, UPDATE ... RETURNING); use postgresql://")]
    if drv not in STORAGE_DIALECTS:
        return [(path, f"unknown or unsupported dialect {drv!r}; use one of "
                       f"{', '.join(STORAGE_DIALECTS)}")]
    p: list[tuple[str, str]] = []
    if u.password is not None and not allow_password:
        p.append((path, f"the URL holds a password, and the spec is stored verbatim on "
                        f"Kubernetes objects; remove it and put the full URL in ${STORAGE_ENV} "
                        "(a Secret in the pods) or use PGPASSWORD / ~/.pgpass"))
    if not u.host:
        p.append((path, "no host; the pods reach the database over the network, so name its "
                        "Service (e.g. optuna-postgres.ml.svc)"))
    problem = check_storage_driver(url)
    if problem:
        p.append((path, problem))
    return p


def check_storage_driver(url: str) -> str | None:
    """Whether this process can load the URL's database driver (None) or why not.

    Optuna's RDBStorage raises ImportError only when it builds its engine; this finds the same
    problem up front, without connecting. The message names the package to install.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        u = make_url(url)
    except (ArgumentError, ValueError):
        return "not a database URL"
    try:
        dialect = u.get_dialect()
        importer = getattr(dialect, "import_dbapi", None) or dialect.dbapi
        importer()
    except NoSuchModuleError:
        return f"unknown dialect {u.drivername!r}"
    except ImportError as exc:
        module = (exc.name or str(exc)).split(".")[0]
        return (f"the {u.drivername} driver needs the Python package {module!r}, which is not "
                f"installed (pip install {_PIP_NAMES.get(module, module)})")
    return None


def check_storage(url: str, *, field: str = f"${STORAGE_ENV}",
                  allow_password: bool = True) -> list[str]:
    """Problems of a storage URL that did not come from the spec (e.g. $FLEET_OPTUNA_STORAGE)."""
    return [f"{path}: {msg}" for path, msg in _storage_problems(url, field,
                                                                 allow_password=allow_password)]


def validate(spec: SweepSpec) -> list[str]:
    """Every problem with the spec, as `"<field path>: <message>"` (empty: valid)."""
    return [f"{path}: {msg}" for path, msg in _problems(spec)]


def warnings(spec: SweepSpec) -> list[str]:
    """Allowed but probably unintended; print them, don't fail on them."""
    w: list[str] = []
    mt = spec.budget.max_trials
    if mt and mt > 0 and spec.parallelism > mt:
        w.append(f"parallelism: {spec.parallelism} is more than budget.max_trials {mt}; "
                 f"clamped to {mt} (more would only idle)")
    if spec.pods > MANY_PODS:
        w.append(f"parallelism: {spec.pods} pods need about {2 * spec.pods} database "
                 "connections; beyond ~40 put PgBouncer in front of PostgreSQL")
    for q in spec.search_space:
        path = f"search_space.{q.name}"
        if q.type in ("float", "int") and q.low is not None and q.low == q.high:
            w.append(f"{path}: low == high ({q.low:g}), so it is constant; move it to params")
        if q.type == "categorical" and len(q.choices) == 1:
            w.append(f"{path}: a single choice is constant; move it to params")
        if (q.type == "float" and q.step and q.low is not None and q.high is not None
                and q.high > q.low and q.step <= q.high - q.low):
            d = decimal.Decimal
            if (d(str(q.high)) - d(str(q.low))) % d(str(q.step)) != 0:
                n = grid_size(q) or 1
                top = d(str(q.low)) + (n - 1) * d(str(q.step))
                w.append(f"{path}: high {q.high:g} is not low + k * step; the largest value "
                         f"will be {top}")
    m = spec.objective.metric.lower()
    if "loss" in m and spec.objective.direction == "maximize":
        w.append(f"objective: {spec.objective.metric} is maximized; losses are usually "
                 "minimized")
    if "acc" in m and spec.objective.direction == "minimize":
        w.append(f"objective: {spec.objective.metric} is minimized; accuracies are usually "
                 "maximized")
    s = spec.sampler.type
    startup = {"tpe": TPE_STARTUP_TRIALS, "gp": GP_STARTUP_TRIALS}.get(s)
    if startup and mt and 0 < mt <= startup:
        w.append(f"sampler: {s} samples its first {startup} trials at random, so with "
                 f"max_trials {mt} this sweep is a random search")
    if s == "grid" and mt:
        sizes = [grid_size(q) for q in spec.search_space]
        if sizes and None not in sizes:
            total = math.prod(n for n in sizes if n is not None)
            if total < mt:
                w.append(f"sampler: the grid has only {total} points; the sweep ends after "
                         f"{total} trials, not max_trials {mt}")
    if s == "cmaes":
        cats = [q.name for q in spec.search_space if q.type == "categorical"]
        if cats:
            w.append(f"sampler: cmaes cannot model categorical params ({', '.join(cats)}); it "
                     "samples them at random")
        if len(spec.search_space) - len(cats) == 1:
            w.append("sampler: cmaes needs at least 2 numeric params; with 1 it samples at "
                     "random")
    r = spec.pruner
    if r.type == "median":
        if r.warmup_steps >= spec.epochs:
            w.append(f"pruner: warmup_steps {r.warmup_steps} >= epochs {spec.epochs}, so no "
                     "trial is ever pruned")
        elif mt and mt <= r.startup_trials + spec.effective_parallelism:
            w.append(f"pruner: pruning starts after {r.startup_trials} complete trials and "
                     f"{spec.effective_parallelism} run at once, so at most "
                     f"{max(0, mt - r.startup_trials - spec.effective_parallelism)} of "
                     f"{mt} trials can be pruned")
    if spec.storage:
        from sqlalchemy.engine import make_url

        try:
            host = make_url(spec.storage).host
        except Exception:  # validate() reports it
            host = None
        if host in ("localhost", "127.0.0.1", "::1"):
            w.append(f"storage: host {host} is the pod itself inside the cluster; name the "
                     "database Service")
    return w


def finalize(spec: SweepSpec) -> SweepSpec:
    """The spec as stored: parallelism clamped to max_trials, max_failed made explicit."""
    return replace(spec, parallelism=spec.effective_parallelism,
                   budget=replace(spec.budget, max_failed=spec.budget.effective_max_failed))


# --------------------------------------------------------------------------- overrides


OVERRIDE_PATHS = {"name": "name", "max_trials": "budget.max_trials",
                  "parallelism": "parallelism", "code": "code", "data": "data",
                  "storage": "storage"}


def apply_overrides(spec: SweepSpec, *, name: str | None = None, max_trials: int | None = None,
                    parallelism: int | None = None, code: str | None = None,
                    data: str | None = None, storage: str | None = None) -> SweepSpec:
    """The spec with CLI flags applied (None: not given); validate() it again afterwards."""
    changes: dict[str, Any] = {k: v for k, v in (("name", name), ("parallelism", parallelism),
                                                 ("code", code), ("data", data),
                                                 ("storage", storage)) if v is not None}
    if max_trials is not None:
        changes["budget"] = replace(spec.budget, max_trials=max_trials)
    return replace(spec, **changes)


def resolve(text: str, *, source: str, name: str | None = None, max_trials: int | None = None,
            parallelism: int | None = None, code: str | None = None, data: str | None = None,
            storage: str | None = None) -> tuple[SweepSpec, list[str]]:
    """load + overrides + validate + finalize in one go: (spec, warnings) or SpecError.

    The error lists every problem at once, structural and semantic, each with `source:line:`
    where the field is in the file and `(from --flag)` where an override set it.
    """
    overrides = {"name": name, "max_trials": max_trials, "parallelism": parallelism,
                 "code": code, "data": data, "storage": storage}
    given = {OVERRIDE_PATHS[k]: k for k, v in overrides.items() if v is not None}
    data_, ctx = _yaml_data(text, source)
    spec = apply_overrides(_parse(data_, ctx), **overrides)
    # A field that failed to parse fell back to its default: its semantic messages would
    # mislead, so only its structural message is kept.
    bad = {b for b in ctx.bad if b not in given}
    out = [ctx.format(p, m) for p, m in ctx.problems
           if not any(p == g or p.startswith(g + ".") for g in given)]
    for path, msg in _problems(spec, grid_checks=not ctx.partial_space):
        if any(path == b or path.startswith(b + ".") or path.startswith(b + "[") for b in bad):
            continue
        flag = given.get(path)
        note = f" (from --{flag.replace('_', '-')})" if flag else ""
        out.append(ctx.format(path, msg, note))
    if out:
        raise SpecError(out)
    return finalize(spec), warnings(spec)


# --------------------------------------------------------------------------- JSON form


def _param_dict(q: Param) -> dict[str, Any]:
    if q.type == "categorical":
        return {"type": q.type, "choices": list(q.choices)}
    d: dict[str, Any] = {"type": q.type, "low": q.low, "high": q.high}
    if q.log:
        d["log"] = True
    if q.step is not None:
        d["step"] = q.step
    if q.choices:
        d["choices"] = list(q.choices)
    return d


def to_dict(spec: SweepSpec) -> dict[str, Any]:
    """A JSON-serializable dict shaped like the YAML (None fields left out)."""
    d: dict[str, Any] = {"name": spec.name}
    if spec.namespace is not None:
        d["namespace"] = spec.namespace
    d.update(code=spec.code, data=spec.data, output=spec.output, epochs=spec.epochs,
             params=dict(spec.params),
             search_space={q.name: _param_dict(q) for q in spec.search_space},
             objective=dataclasses.asdict(spec.objective),
             budget={k: v for k, v in dataclasses.asdict(spec.budget).items() if v is not None},
             parallelism=spec.parallelism, gpus=spec.gpus)
    for key in ("cpu", "memory"):
        if getattr(spec, key) is not None:
            d[key] = getattr(spec, key)
    d["sampler"] = {"type": spec.sampler.type}
    if spec.sampler.seed is not None:
        d["sampler"]["seed"] = spec.sampler.seed
    d["pruner"] = {"type": spec.pruner.type, **{k: getattr(spec.pruner, k)
                                                for k in PRUNER_FIELDS.get(spec.pruner.type, ())}}
    if spec.storage is not None:
        d["storage"] = spec.storage
    if spec.promotion is not None:
        d["promotion"] = dataclasses.asdict(spec.promotion)
    d.update(abort_after_identical_failures=spec.abort_after_identical_failures,
             mode=spec.mode, workers_per_trial=spec.workers_per_trial)
    return d


# --------------------------------------------------------------------------- Optuna


def distributions(spec: SweepSpec) -> dict[str, optuna.distributions.BaseDistribution]:
    """The search space as Optuna distributions (for ask(fixed_distributions=...))."""
    from optuna.distributions import (
        BaseDistribution,
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    out: dict[str, BaseDistribution] = {}
    for q in spec.search_space:
        if q.type == "float":
            out[q.name] = FloatDistribution(float(q.low), float(q.high), log=q.log,
                                            step=None if q.step is None else float(q.step))
        elif q.type == "int":
            out[q.name] = IntDistribution(int(q.low), int(q.high), log=q.log,
                                          step=int(q.step or 1))
        elif q.type == "categorical":
            out[q.name] = CategoricalDistribution(list(q.choices))
        else:
            raise ValueError(f"search_space.{q.name}.type: {q.type!r} (validate() first)")
    return out


def study_distributions(study: optuna.Study) -> dict[str, optuna.distributions.BaseDistribution]:
    """The distributions an existing study recorded, per param name (latest trial wins)."""
    out: dict[str, Any] = {}
    for trial in study.get_trials(deepcopy=False):
        out.update(trial.distributions)
    return out


def check_compatible(spec: SweepSpec,
                     existing: Mapping[str, optuna.distributions.BaseDistribution]) -> list[str]:
    """Problems reusing a study whose trials recorded `existing` (see study_distributions)."""
    from optuna.distributions import check_distribution_compatibility

    p: list[str] = []
    for name, new in distributions(spec).items():
        old = existing.get(name)
        if old is None:
            continue
        try:
            check_distribution_compatibility(old, new)
        except ValueError as exc:
            p.append(f"search_space.{name}: the existing study records {name} as "
                     f"{type(old).__name__} ({old!r}) but this spec makes it "
                     f"{type(new).__name__} ({new!r}): {exc} Keep the study's definition, or "
                     "start a new study under another sweep name")
    return p


def grid_space(spec: SweepSpec) -> dict[str, list[Choice]]:
    """Every value of every param, for GridSampler (all params must be griddable)."""
    d = decimal.Decimal
    out: dict[str, list[Choice]] = {}
    for q in spec.search_space:
        n = grid_size(q)
        if n is None:
            raise ValueError(f"search_space.{q.name}: not griddable (validate() first)")
        if q.type == "categorical":
            out[q.name] = list(q.choices)
        elif q.type == "int":
            out[q.name] = list(range(int(q.low), int(q.high) + 1, int(q.step or 1)))
        else:
            low, step = d(str(q.low)), d(str(q.step))
            out[q.name] = [float(low + i * step) for i in range(n)]
    return out


def make_sampler(spec: SweepSpec, *, worker_index: int = 0) -> optuna.samplers.BaseSampler:
    """The spec's sampler with Optuna 5 defaults; worker i is seeded seed + i.

    Every worker builds its own sampler: one shared seed would make the workers' random
    startup trials identical.
    """
    from optuna import samplers

    seed = spec.sampler.seed
    if seed is not None:
        seed = (seed + worker_index) % (MAX_SEED + 1)
    kind = spec.sampler.type
    if kind == "tpe":
        return samplers.TPESampler(seed=seed)
    if kind == "random":
        return samplers.RandomSampler(seed=seed)
    if kind == "gp":
        return samplers.GPSampler(seed=seed)
    if kind == "cmaes":
        return samplers.CmaEsSampler(seed=seed)
    if kind == "grid":
        return samplers.GridSampler(grid_space(spec), seed=seed)
    raise ValueError(f"sampler.type: {kind!r} (validate() first)")


def make_pruner(spec: SweepSpec) -> optuna.pruners.BasePruner:
    """median: MedianPruner(n_startup_trials, n_warmup_steps); hyperband: max_resource=epochs.

    Steps are what the objective reports, the trainer's 1-based epochs: warmup_steps k means
    the earliest prune is at epoch k's report.
    """
    from optuna import pruners

    r = spec.pruner
    if r.type == "median":
        return pruners.MedianPruner(n_startup_trials=r.startup_trials,
                                    n_warmup_steps=r.warmup_steps)
    if r.type == "hyperband":
        return pruners.HyperbandPruner(min_resource=r.min_resource, max_resource=spec.epochs,
                                       reduction_factor=r.reduction_factor)
    if r.type == "none":
        return pruners.NopPruner()
    raise ValueError(f"pruner.type: {r.type!r} (validate() first)")


def suggest(trial: optuna.Trial, spec: SweepSpec) -> dict[str, Choice]:
    """This trial's values for the search space (the fixed params are not included)."""
    out: dict[str, Choice] = {}
    for q in spec.search_space:
        if q.type == "float":
            out[q.name] = trial.suggest_float(q.name, float(q.low), float(q.high),
                                              step=None if q.step is None else float(q.step),
                                              log=q.log)
        elif q.type == "int":
            out[q.name] = trial.suggest_int(q.name, int(q.low), int(q.high),
                                            step=int(q.step or 1), log=q.log)
        else:
            out[q.name] = trial.suggest_categorical(q.name, list(q.choices))
    return out


def trial_params(spec: SweepSpec, values: Mapping[str, Choice]) -> dict[str, Choice]:
    """The trainer's params for one trial: the fixed params plus the suggested values."""
    return {**dict(spec.params), **values}


# --------------------------------------------------------------------------- the example


EXAMPLE = """\
# A hyperparameter sweep of the digits trainer (tuning/example_trainer). Every field is
# checked before anything is created: a wrong one exits 2 and nothing exists afterwards.
#
# Upload the trainer wheel and the dataset first; this prints the code and data URIs:
#   fleet train publish-example --to hdfs://127.0.0.1:PORT/examples/digits

# The sweep's name: a DNS label of at most 40 characters (lowercase letters, digits, '-',
# starting with a letter). It names the sweep's Jobs and pods.
name: digits-sweep
# namespace: ml            # default: the kubeconfig context's namespace

# What to train, exactly as `fleet train --code/--data/--output`.
code: hdfs://127.0.0.1:PORT/examples/digits/code/digits_trainer-1.0.0-py3-none-any.whl
data: hdfs://127.0.0.1:PORT/examples/digits/data     # the newest dataset version is used
output: hdfs://127.0.0.1:PORT/examples/digits/models # trial models go to OUTPUT/<version>/
epochs: 5                  # per trial; the trainer reports metrics after every epoch

# Trainer parameters fixed for every trial. The digits trainer takes learning_rate,
# batch_size, conv1, conv2, dense, dropout and seed (a name it doesn't know fails the trial).
params:
  conv2: 32
  seed: 7

# What to search. float/int: low and high (inclusive), log: true for scale-free ranges,
# or step: for evenly spaced values (not both). categorical: a list of choices (null, bool,
# numbers or strings). 1e-4 and 1.0e-4 are both numbers.
search_space:
  learning_rate: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}
  batch_size: {type: categorical, choices: [32, 64, 128]}
  conv1: {type: int, low: 8, high: 32, step: 8}
  dense: {type: int, low: 32, high: 256, log: true}
  dropout: {type: float, low: 0.0, high: 0.5, step: 0.1}

objective:
  metric: val_accuracy     # loss, accuracy, val_loss or val_accuracy (reported every epoch)
  direction: maximize      # maximize | minimize (val_loss would be minimize)

budget:
  max_trials: 12           # exactly this many trials are created, whatever the parallelism
  max_failed: 3            # stop the sweep once more trials than this have failed
  timeout: 30m             # optional: start no new trial after this long (90, 30m, 2h, 1d)

parallelism: 2             # trials at once: worker pods (clamped to max_trials)
gpus: 0                    # nvidia.com/gpu per pod; this small CNN trains fine on CPU
# cpu: "2"                 # optional request = limit per pod
# memory: 4Gi

# mode: pool               # pool (default): `parallelism` long-lived worker pods share the
#                          # trials; pod-per-trial: one Job per trial (isolation)
# workers_per_trial: 1     # > 1: a distributed trial across that many pods (pod-per-trial)

sampler:
  type: tpe                # tpe (default) | random | gp (needs torch) | cmaes (needs cmaes)
                           # | grid (all params int, categorical or float with a step)
  seed: 7                  # optional; worker pod i uses seed + i

pruner:
  type: median             # median (default) | hyperband | none
  warmup_steps: 2          # epoch 1 always runs; the earliest prune is at epoch 2's report
  startup_trials: 3        # prune only once 3 trials have completed, across all pods

# storage: postgresql+psycopg://optuna@optuna-postgres.ml.svc:5432/optuna
#                          # default: $FLEET_OPTUNA_STORAGE. PostgreSQL only; no password
#                          # here (the spec is stored on Kubernetes objects): put it in
#                          # $FLEET_OPTUNA_STORAGE or PGPASSWORD

abort_after_identical_failures: 3  # abort when the first 3 trials fail the same way (0: never)

# Optional: promote the best trial's model to a serving Deployment if it beats the live
# model on the holdout by min_delta (both judged on the same holdout, as `fleet promote`).
# promotion:
#   deployment: digits
#   min_delta: 0.005
#   auto_promote: false    # false: report the verdict and the command, promote nothing
"""
