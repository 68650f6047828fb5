"""Change notifications the watch cache sends to subscribers (the TUI, `fleet ls -w`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from fleet.model import ConnectionState, ModelDeployment, RetrainSchedule, TrainingJob

Key = tuple[str, str]  # (namespace, name)


@dataclass(frozen=True, slots=True)
class FleetChange:
    """What changed since the previous notification; empty lists mean "nothing of that kind".

    `connection` is set only when the connection state changed. A relist after
    `410 Gone` or a reconnect is reported as upserts/deletes against the previous
    state, so a subscriber never needs to rebuild from scratch.
    """

    deployments_upserted: list[ModelDeployment] = field(default_factory=list)
    deployments_deleted: list[Key] = field(default_factory=list)
    jobs_upserted: list[TrainingJob] = field(default_factory=list)
    jobs_deleted: list[Key] = field(default_factory=list)
    connection: ConnectionState | None = None
    error: str | None = None  # last connection error, for a banner
    # re-training CronJobs (after `error`, so positional constructors keep working)
    schedules_upserted: list[RetrainSchedule] = field(default_factory=list)
    schedules_deleted: list[Key] = field(default_factory=list)

    def is_empty(self) -> bool:
        return not (
            self.deployments_upserted
            or self.deployments_deleted
            or self.jobs_upserted
            or self.jobs_deleted
            or self.schedules_upserted
            or self.schedules_deleted
            or self.connection
        )
