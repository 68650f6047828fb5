"""The TUI as a user who can see only some namespaces (real apiserver, RBAC on): per-namespace
watches, said once, and a type forbidden in one namespace on the perm line only."""

from __future__ import annotations

import pytest

from tests.fleet.test_scope_cluster import Teams, teams  # noqa: F401 - the fixture
from tests.tui.test_tui_cluster import SIZE, cell, plain, title, until
from tui.app import FleetApp
from tui.backend import KubeBackend

pytestmark = [pytest.mark.cluster, pytest.mark.asyncio]


async def test_tui_watches_the_namespaces_rbac_allows_and_says_so_once(
        teams: Teams, monkeypatch: pytest.MonkeyPatch):  # noqa: F811
    kc = teams.kubeconfig(teams.bob, teams.ns_a)  # no CronJobs in ns-b
    for key, value in teams.env(kc, teams.config(f"namespaces: [{teams.ns_b}]\n")).items():
        if key in ("KUBECONFIG", "FLEET_CONFIG", "XDG_CONFIG_HOME"):
            monkeypatch.setenv(key, value)
    app = FleetApp(lambda ctx, nss: KubeBackend(kc, ctx, nss), age_refresh_s=0)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: cell(app, teams.ns_a, "ranker", "ready")
                    and cell(app, teams.ns_b, "tagger", "ready"), what="rows of both namespaces")
        assert {k[0] for k in app.deployments.records} == {teams.ns_a, teams.ns_b}
        assert app.backend.namespaces == sorted([teams.ns_a, teams.ns_b])
        await until(pilot, lambda: app.connection is not None
                    and app.connection.value == "synced", what="synced")
        perm = app.main.query_one("#perm-line")
        await until(pilot, lambda: "cronjobs forbidden" in str(perm.render()),
                    what="the forbidden type on the perm line")
        assert str(perm.render()).count("forbidden in") == 1
        assert f"cronjobs forbidden in {teams.ns_b} (RBAC)" in str(perm.render())
        banner = app.main.query_one("#banner")
        assert not banner.has_class("-reconnecting") and not banner.has_class("-connecting")
        bar = plain(app.main.query_one("#context-bar").content)
        assert f"namespace: {teams.ns_a}, {teams.ns_b} (RBAC)" in bar
        assert title(app).startswith(f"deployments({teams.ns_a},{teams.ns_b})[2]")
        notes = [(n.title, n.message) for n in app._notifications]
        assert notes == [("watching some namespaces",
                          f"cannot list deployments in all namespaces (RBAC); watching "
                          f"{teams.ns_b} (config file), {teams.ns_a} (the context's namespace) "
                          "(cannot list namespaces to discover others)")]
        # the namespace picker offers the watched namespaces (listing them is forbidden)
        await pilot.press("N")
        await until(pilot, lambda: type(app.screen).__name__ == "PickerScreen", what="picker")
        assert [oid for oid, _ in app.screen.options] == ["*", teams.ns_a, teams.ns_b]
        assert len(app._notifications) == 1  # no "cannot list namespaces" warning
