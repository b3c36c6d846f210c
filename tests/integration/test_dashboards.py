"""The dashboards (issue 11) in a real browser: Debian's chromium driven by playwright, against
Superset on the native stack. Log in; open each dashboard and wait until every chart has drawn;
fail on any chart that errors or comes back empty; a big number equals the same figure from
Trino, with and without a native filter; a screenshot of each dashboard.

Screenshots go to $LAKEHOUSE_HOME/test-artifacts/dashboards/ (docs/dashboards/ holds the
README's). When the lakehouse's own marts are empty (a fresh CI stack), a small seeded backfill
with chaos and faults is loaded first."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from smartmeter import dashboards as provisioning
from smartmeter.config import REPO_ROOT
from smartmeter.trino_sql import query
from tests.conftest import run_lakehouse
from tests.helpers.dashboards import (
    base_url,
    big_number,
    browser,
    dashboards,
    login,
    open_dashboard,
    recording_outside_requests,
    screenshot,
)

SLUGS = ("customer-usage", "meter-health", "pipeline")
# A healthy pipeline has recorded no gap.
MAY_BE_EMPTY = frozenset({"Gaps in the Kafka data"})
ENERGY = "Energy used (kWh)"
ENERGY_SQL = """select coalesce(sum(usage.total_energy_kwh), 0)
from iceberg.marts.customer_usage_summary as usage
inner join iceberg.staging.stg_customers as customers on usage.customer_id = customers.customer_id"""


def _scalar(settings, sql: str):
    return query(settings, sql)[1][0][0]


def _marts_have_data(settings) -> bool:
    tables = {row[0] for row in query(settings, "show tables from iceberg.marts")[1]}
    return "customer_usage_summary" in tables and _scalar(settings, "select count(*) from iceberg.marts.customer_usage_summary") > 0


@pytest.fixture(scope="module")
def loaded(settings):
    if not provisioning.healthy(settings):
        pytest.fail(f"Superset does not answer on port {settings.superset_port}: ./lakehouse up (with LAKEHOUSE_DASHBOARDS on)")
    if not _marts_have_data(settings):
        simulator = subprocess.run(
            [sys.executable, "telemetry_simulator.py", "--backfill-days", "3", "--seed", "11", "--fault-rate", "0.4", "--chaos"],
            cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
        assert simulator.returncode == 0, simulator.stderr[-2000:]
        caught_up = run_lakehouse("catch-up", timeout_s=1800)
        assert caught_up.returncode == 0, caught_up.stdout[-2000:] + caught_up.stderr[-2000:]
    assert _marts_have_data(settings)


@pytest.fixture(scope="module")
def page(settings, loaded):
    with browser() as chromium:
        yield login(chromium, settings)


@pytest.fixture(scope="module")
def provisioned(settings, page):
    return dashboards(page, settings)


def test_a_wrong_password_is_refused(settings, loaded):
    with browser() as chromium:
        page = chromium.new_page()
        page.goto(f"{base_url(settings)}/login/")
        page.fill("#username", settings.superset_admin_user)
        page.fill("#password", settings.superset_admin_password + "-wrong")
        page.click('[data-test="login-button"]')
        page.wait_for_load_state("networkidle")
        assert "/login" in page.url
        assert page.request.get(f"{base_url(settings)}/api/v1/dashboard/").status == 401


def test_no_page_sends_the_browser_outside_the_stack(settings, page, provisioned):
    """Superset's stock pages load a telemetry pixel from the internet, which holds a page's load
    event as long as an unreachable host takes to fail; superset_config.py's policy forbids it."""
    outside: list[str] = []
    chromium = page.context.browser
    recorded = login(chromium, settings, recording_outside_requests(chromium, settings, outside))
    try:
        recorded.wait_for_load_state("networkidle")
        for slug in SLUGS:
            assert not open_dashboard(recorded, settings, provisioned[slug]).failures(MAY_BE_EMPTY)
    finally:
        recorded.context.close()
    assert outside == []


def test_the_three_dashboards_are_provisioned_as_in_the_folder(provisioned):
    contents = provisioning.bundle_contents({"TRINO_USER": "u", "TRINO_HOST": "h", "TRINO_PORT": "1"})
    for slug in SLUGS:
        assert slug in provisioned, f"dashboard {slug} is missing; found {sorted(provisioned)}"
        config = next(yaml.safe_load(text) for file, text in contents.items()
                      if file.startswith("dashboards/") and yaml.safe_load(text)["slug"] == slug)
        in_folder = {c["meta"]["sliceName"] for c in config["position"].values() if isinstance(c, dict) and c["type"] == "CHART"}
        assert set(provisioned[slug].charts.values()) == in_folder


@pytest.mark.parametrize("slug", SLUGS)
def test_every_chart_renders_without_error(settings, page, provisioned, slug):
    rendered = open_dashboard(page, settings, provisioned[slug])
    print(f"\n{slug}: {len(rendered.dashboard.charts)} charts drawn in {rendered.seconds:.1f}s")
    path = screenshot(page, settings.home / "test-artifacts" / "dashboards" / f"{slug}.png")
    assert not rendered.failures(MAY_BE_EMPTY), f"{slug} (screenshot {path}):\n" + "\n".join(rendered.failures(MAY_BE_EMPTY))


def _shown_equals_trino(page, settings, dashboard, sql: str, url_query: str = "?force=true") -> None:
    before = _scalar(settings, sql)
    rendered = open_dashboard(page, settings, dashboard, url_query)
    assert not rendered.failures(MAY_BE_EMPTY)
    shown = big_number(page, ENERGY)
    after = _scalar(settings, sql)
    # The pipeline loop may land data meanwhile: the figure is one of the two, as rounded on screen.
    assert min(abs(shown - before), abs(shown - after)) <= 0.5, f"{ENERGY} shows {shown}, Trino says {before} (then {after})"


def test_big_number_equals_the_same_figure_from_trino(settings, page, provisioned):
    _shown_equals_trino(page, settings, provisioned["customer-usage"], ENERGY_SQL)


def test_segment_filter_reaches_the_big_number(settings, page, provisioned):
    """Choose a segment in the filter bar, apply: the figure is that segment's from Trino."""
    _shown_equals_trino(page, settings, provisioned["customer-usage"], ENERGY_SQL)
    page.locator('[data-test="NATIVE_FILTER-segment"]').click()
    page.get_by_title("residential", exact=True).click()
    page.keyboard.press("Escape")
    before = _scalar(settings, ENERGY_SQL + " where customers.customer_segment = 'residential'")
    page.locator('[data-test="filter-bar__apply-button"]').click()
    page.wait_for_function(
        """([name, want]) => {
             const el = document.querySelector(`[data-test-chart-name="${name}"] .header-line`);
             return el && Math.abs(parseFloat(el.innerText.replace(/,/g, '')) - want) <= 0.5 + want * 0.01;
           }""", arg=[ENERGY, before], timeout=60_000)
    after = _scalar(settings, ENERGY_SQL + " where customers.customer_segment = 'residential'")
    shown = big_number(page, ENERGY)
    assert min(abs(shown - before), abs(shown - after)) <= 0.5, f"residential: shows {shown}, Trino says {before} (then {after})"
