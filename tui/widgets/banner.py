"""The connection banner: hidden while synced, loud while the API is away."""

from __future__ import annotations

from textual.widgets import Static

from fleet.model import ConnectionState


class ConnectionBanner(Static):
    DEFAULT_CSS = """
    ConnectionBanner { dock: top; height: 1; padding: 0 1; display: none; }
    ConnectionBanner.-connecting { display: block; background: $primary-darken-2; }
    ConnectionBanner.-reconnecting { display: block; background: $error; color: $text; }
    """

    def show_state(self, state: ConnectionState | None, error: str | None = None) -> None:
        self.remove_class("-connecting", "-reconnecting")
        if state is ConnectionState.CONNECTING:
            self.add_class("-connecting")
            self.update("Connecting to the API server… (syncing the watch cache)")
        elif state is ConnectionState.RECONNECTING:
            self.add_class("-reconnecting")
            why = f": {error}" if error else ""
            self.update(
                f"⚠ API server unreachable{why} — reconnecting; rows show the last known state"
            )
