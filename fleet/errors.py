"""Typed errors for every fleet operation, each with a message an on-call engineer can act on.

`message` is what the CLI prints. API errors keep kubectl's wording
(`Error from server (NotFound): deployments.apps "x" not found`); errors kubectl raises
itself keep its text (`no rollout history found for deployment "x"`), and the CLI
prefixes those with `error: ` exactly as kubectl's `CheckErr` does.
"""

from __future__ import annotations


class FleetError(Exception):
    """Base class; `message` is the human text, `status`/`reason` come from the API if any."""

    def __init__(
        self, message: str, *, status: int | None = None, reason: str = "", detail: str = ""
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.reason = reason
        self.detail = detail or message  # the bare API message, for kubectl-style wrapping

    def wrap(self, prefix: str) -> FleetError:
        """Same type, message `PREFIX: <bare message>` (Go's `fmt.Errorf("...: %w", err)`)."""
        return type(self)(f"{prefix}: {self.detail}", status=self.status, reason=self.reason)

    def __str__(self) -> str:
        return self.message

    @property
    def from_server(self) -> bool:
        """True when the text is an API status (`Error from server ...`), printed without prefix."""
        return self.message.startswith("Error from server")


class NotFound(FleetError):
    """The object (or namespace) does not exist."""


class NoRolloutHistory(FleetError):
    """A rollback found no revision to return to."""


class RevisionNotFound(FleetError):
    """`--to-revision N` names a revision no ReplicaSet carries."""


class DeploymentPaused(FleetError):
    """The operation is refused on a paused Deployment (or resume on a running one)."""


class Forbidden(FleetError):
    """RBAC denied the request."""


class Unauthorized(FleetError):
    """The credentials were rejected (401)."""


class Conflict(FleetError):
    """Someone else changed the object between our read and our write; nothing was applied."""


class InvalidReplicas(FleetError):
    """A replica count (or current-replicas precondition) is not a valid number."""


class Unreachable(FleetError):
    """The API server could not be reached (connection refused, TLS or timeout)."""


class PreconditionFailed(FleetError):
    """A caller precondition (current replicas, resourceVersion) did not hold; nothing changed."""


class ManagedElsewhere(PreconditionFailed):
    """The Deployment is owned by another controller (KServe, Argo Rollouts, ...), which would
    revert a change made to it directly."""


class Gone(FleetError):
    """410 Gone: a watch resourceVersion is too old; the cache must relist."""


class Invalid(FleetError):
    """422: the server rejected the object as invalid."""


class ConfigError(FleetError):
    """The kubeconfig (or fleet's own config file, `fleet.config`) is missing, unreadable, or
    names an unknown context."""


class Timeout(FleetError):
    """Waiting for a condition (e.g. `rollout status --timeout`) ran out of time."""


class CredentialError(Unreachable):
    """No credentials could be obtained: an exec plugin is missing or failed, an OIDC refresh
    failed. kubectl reports these as `Unable to connect to the server: getting credentials: …`;
    like a lost connection, a watch retries them with backoff."""
