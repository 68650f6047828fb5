"""`fleet deploy` in the TUI: a form, a pre-flight (RBAC + server-side dry run), the same
progress lines as the CLI (pods created/ready of N, the last event), and the result.

The form checks the input offline (`fleet.ops.deploy.validate`) and then, in a worker, asks the
API whether the user may create Deployments in the namespace and dry-runs every object; only a
clean pre-flight closes it with the spec. Nothing is written before the user confirms.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, RichLog, Select, Static

from fleet.model import SERVING_MODES
from tui.messages import DeployChecked
from tui.screens.confirm import DIALOG_CSS

if TYPE_CHECKING:
    from tui.app import FleetApp

FIELDS: list[tuple[str, str, str]] = [  # (id, label, placeholder)
    ("name", "name (DNS label: names the Deployment, Service, HPA, route)", "digits"),
    ("namespace", "namespace", "default"),
    ("model_uri", "model URI", "hdfs://namenode:8020/models/digits"),
    ("version", "version (label app.kubernetes.io/version; optional)", "3"),
    ("replicas", "replicas (optional: the overlay's HPA minimum)", ""),
    ("runtime_class", "runtime class (optional; fleet-local runs pods locally)", ""),
    ("cpu", "CPU request/limit (optional, e.g. 500m)", ""),
    ("memory", "memory request/limit (optional, e.g. 1Gi)", ""),
]
MODES = [(m, m) for m in SERVING_MODES]


def spec_from(values: dict[str, str]) -> Any:
    """The form's values as a `DeploySpec`; ValueError for a replicas value that is no number
    (everything else is `fleet.ops.deploy.validate`'s job)."""
    from fleet.ops.deploy import DeploySpec

    replicas = values.get("replicas", "").strip()
    if replicas and not replicas.lstrip("-").isdigit():
        raise ValueError(f"replicas must be a whole number, got {replicas!r}")

    def opt(key: str) -> str | None:
        return values.get(key, "").strip() or None

    return DeploySpec(name=values.get("name", "").strip(),
                      namespace=values.get("namespace", "").strip() or "default",
                      model_uri=values.get("model_uri", "").strip(), version=opt("version"),
                      replicas=int(replicas) if replicas else None,
                      mode=values.get("mode", "latency") or "latency",
                      runtime_class=opt("runtime_class"), cpu=opt("cpu"), memory=opt("memory"))


class DeployFormScreen(ModalScreen[tuple[Any, Any] | None]):
    """Dismisses with (spec, dry-run result) once the pre-flight passed, or None."""

    DEFAULT_CSS = ("DeployFormScreen { align: center middle; } "
                   "DeployFormScreen Input { margin-bottom: 0; } "
                   "DeployFormScreen #deploy-error { color: $error; height: auto; } "
                   "DeployFormScreen Select { margin-bottom: 1; }" + DIALOG_CSS)
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="deploy.cancel"),
                Binding("ctrl+s", "submit", "Check & review", id="deploy.submit")]

    def __init__(self, namespace: str, values: dict[str, str] | None = None) -> None:
        super().__init__()
        self.initial = {"namespace": namespace, **(values or {})}
        self.checking = False

    @property
    def fleet(self) -> FleetApp:
        return cast("FleetApp", self.app)  # Textual types `app` as any App

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Deploy a new model (fleet deploy)", classes="title")
            with VerticalScroll(classes="body"):
                for fid, label, placeholder in FIELDS[:4]:
                    yield Label(label)
                    yield Input(value=self.initial.get(fid, ""), placeholder=placeholder,
                                id=f"f-{fid}")
                yield Label("mode (Kustomize overlay)")
                yield Select(MODES, value=self.initial.get("mode", "latency"), allow_blank=False,
                             id="f-mode")
                for fid, label, placeholder in FIELDS[4:]:
                    yield Label(label)
                    yield Input(value=self.initial.get(fid, ""), placeholder=placeholder,
                                id=f"f-{fid}")
            yield Static("", id="deploy-error")
            yield Label("Enter: next field / check   Ctrl+S: check & review   Esc: cancel",
                        classes="hint")
            with Horizontal(classes="buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Check & review", id="check", variant="primary")

    def on_mount(self) -> None:
        first = self.query_one("#f-name", Input)
        first.focus()

    def values(self) -> dict[str, str]:
        out = {i.id.removeprefix("f-"): i.value for i in self.query(Input) if i.id}
        out["mode"] = str(self.query_one("#f-mode", Select).value)
        return out

    @on(Input.Submitted)
    def _next(self, event: Input.Submitted) -> None:
        inputs = list(self.query(Input))
        idx = inputs.index(event.input)
        if idx + 1 < len(inputs):
            inputs[idx + 1].focus()
            return
        self.action_submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "cancel":
            self.dismiss(None)
        else:
            self.action_submit()

    def show_error(self, text: str) -> None:
        self.query_one("#deploy-error", Static).update(Text(text, style="bold red"))

    def action_submit(self) -> None:
        if self.checking:
            return
        try:
            from fleet.ops.deploy import validate

            spec = spec_from(self.values())
            validate(spec)
        except Exception as exc:  # noqa: BLE001 - FleetError/ValueError: say what is wrong
            self.show_error(getattr(exc, "message", None) or str(exc))
            return
        self.checking = True
        self.query_one("#deploy-error", Static).update(
            Text(f"checking: may you create deployments in {spec.namespace}? server-side "
                 "dry run of every object…", style="yellow"))
        self.preflight(spec)

    @work(thread=True, exit_on_error=False, group="deploy-check", exclusive=True)
    def preflight(self, spec: Any) -> None:
        backend = self.fleet.backend
        try:
            if backend is None:
                raise RuntimeError("not connected")
            allowed, reason = backend.can_i("deploy", spec.namespace)
            if allowed is False:
                raise PermissionError(reason or f"RBAC: cannot create deployments in "
                                      f"namespace {spec.namespace}")
            result = backend.deploy(spec, dry_run=True)
        except Exception as exc:  # noqa: BLE001 - shown in the form: fix and retry
            self.post_message(DeployChecked(spec, error=getattr(exc, "message", None)
                                            or str(exc) or type(exc).__name__))
            return
        self.post_message(DeployChecked(spec, result=result))

    def on_deploy_checked(self, message: DeployChecked) -> None:
        self.checking = False
        if message.error:
            self.show_error(f"nothing was created: {message.error}")
            return
        self.dismiss((message.spec, message.result))

    def action_cancel(self) -> None:
        self.dismiss(None)


def plan_lines(spec: Any, result: Any) -> list[Any]:
    """What the confirmation lists: the objects the dry run accepted, the route, warnings."""
    lines: list[Any] = [Text.assemble((f"{spec.namespace}/{spec.name}", "bold"),
                                      f"  model {spec.model_uri}",
                                      f"  version {spec.version}" if spec.version else "",
                                      f"  mode {spec.mode}",
                                      f"  replicas {spec.replicas}" if spec.replicas is not None
                                      else "")]
    for obj in getattr(result, "objects", []):
        lines.append(Text.assemble("  create ", (obj.ref, "green"),
                                   "  (server-side apply, field manager modelfleet)"))
    if getattr(result, "route", ""):
        lines.append(Text(f"  route {result.route}"))
    for w in getattr(result, "warnings", []):
        lines.append(Text(f"  warning: {w}", style="yellow"))
    lines.append(Text("  then waits until the Deployment is Available (pods created/ready "
                      "of N, the last event)", style="dim"))
    return lines


class DeployProgressScreen(ModalScreen[None]):
    """The running deploy's lines; Esc hides it (the deploy goes on, its result is notified)."""

    DEFAULT_CSS = ("DeployProgressScreen { align: center middle; } "
                   "DeployProgressScreen RichLog { height: auto; max-height: 20; } "
                   "DeployProgressScreen #deploy-progress { height: auto; margin-top: 1; }"
                   + DIALOG_CSS)
    BINDINGS = [Binding("escape,enter", "close", "Close", id="deploy_progress.close")]

    def __init__(self, key: tuple[str, str], lines: list[str], progress: str = "",
                 outcome: Text | None = None) -> None:
        super().__init__()
        self.key = key
        self.initial_lines = list(lines)
        self.progress = progress
        self.outcome = outcome

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(f"Deploying {self.key[0]}/{self.key[1]}", classes="title")
            yield RichLog(id="deploy-log", wrap=True, markup=False, highlight=False)
            yield Static(self.progress or "checking and applying…", id="deploy-progress")
            yield Static(self.outcome or "", id="deploy-outcome")
            yield Label("Esc: hide (the deploy goes on; its result is notified)", classes="hint")

    def on_mount(self) -> None:
        log = self.query_one("#deploy-log", RichLog)
        for line in self.initial_lines:
            log.write(line)

    def add_message(self, line: str) -> None:
        self.query_one("#deploy-log", RichLog).write(line)

    def set_progress(self, line: str) -> None:
        self.progress = line
        self.query_one("#deploy-progress", Static).update(line)

    def set_outcome(self, text: Text) -> None:
        self.outcome = text
        self.query_one("#deploy-outcome", Static).update(text)

    def action_close(self) -> None:
        self.dismiss(None)
