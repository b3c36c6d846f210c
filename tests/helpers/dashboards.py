"""Superset's dashboards as a person sees them: Debian's chromium driven by playwright (which
downloads no browser), logged in through the login form, each dashboard opened until every chart
has drawn. Used by tests/integration/test_dashboards.py and bench/bench_dashboards.py."""

from __future__ import annotations

import json
import os
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from smartmeter.commands.test import CHROMIUM
from smartmeter.config import Settings

# Quiet, headless and offline: no updates, sync or first-run pages; no GPU on a server.
CHROMIUM_ARGS = ["--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-gpu"]
VIEWPORT = {"width": 1600, "height": 1000}
# A chart has drawn when its container holds one of these (ECharts canvas, SVG, table, big number),
# or shows an error or an empty state.
DRAWN = "canvas, svg, table, .header-line, .ant-alert, .ant-empty, [role=alert]"
_ALL_DRAWN_JS = """([drawn, expected]) => {
  const charts = [...document.querySelectorAll('[data-test="chart-grid-component"]')];
  return charts.length === expected && charts.every(c =>
    !c.querySelector('[data-test="loading-indicator"], .loading') && c.querySelector(drawn));
}"""
_DOM_ERRORS_JS = """() => [...document.querySelectorAll('[data-test="chart-grid-component"]')]
  .filter(c => c.querySelector('.ant-alert-error, [role=alert]'))
  .map(c => c.getAttribute('data-test-chart-name') + ': ' + c.innerText.slice(0, 300))"""


@dataclass
class Dashboard:
    id: int
    slug: str
    title: str
    charts: dict[int, str]  # chart id -> name


@dataclass
class ChartData:
    """What /api/v1/chart/data answered for one chart, and how long the request took."""

    status: int
    rowcount: int = 0
    error: str | None = None
    seconds: float = 0.0


@dataclass
class Rendered:
    dashboard: Dashboard
    seconds: float
    data: dict[int, ChartData] = field(default_factory=dict)
    dom_errors: list[str] = field(default_factory=list)

    def failures(self, may_be_empty: frozenset[str] = frozenset()) -> list[str]:
        problems = list(self.dom_errors)
        for chart_id, name in self.dashboard.charts.items():
            data = self.data.get(chart_id)
            if data is None:
                problems.append(f"{name}: no data request")
            elif data.status != 200 or data.error:
                problems.append(f"{name}: HTTP {data.status}: {data.error}")
            elif data.rowcount == 0 and name not in may_be_empty:
                problems.append(f"{name}: no rows")
        return problems


def base_url(settings: Settings) -> str:
    return f"http://127.0.0.1:{settings.superset_port}"


@contextmanager
def browser() -> Iterator:
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        raise AssertionError(f"{CHROMIUM} is missing: apt-get install chromium (./lakehouse test installs it)")
    # Chromium's sandbox needs user namespaces that root in a container does not get.
    args = CHROMIUM_ARGS + (["--no-sandbox"] if os.geteuid() == 0 else [])
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=args)
        try:
            yield chromium
        finally:
            chromium.close()


def login(chromium, settings: Settings, context=None, attempts: int = 3):
    """A page logged in through Superset's login form (raises if the login is refused).

    Signing in also sends the login page's event log, anonymously; when that response lands after
    the login's, its session cookie replaces the new one and the browser is sent back to the form
    (the race apache/superset#44109 describes). A person signs in again; so does this, twice."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page = (context or chromium.new_context(viewport=VIEWPORT)).new_page()
    for _ in range(attempts):
        page.goto(f"{base_url(settings)}/login/")
        if "/login" not in page.url:
            return page
        page.fill("#username", settings.superset_admin_user)
        page.fill("#password", settings.superset_admin_password)
        page.click('[data-test="login-button"]')
        try:
            # Through, or back on the form with ?next= (refused, or the race above).
            page.wait_for_url(lambda url: "/login" not in url or "next=" in url, timeout=60_000)
        except PlaywrightTimeout as error:
            raise AssertionError(f"no answer 60 s after signing in; {page.url} shows:\n{page.inner_text('body')[:500]}") from error
        if "/login" not in page.url:
            return page
    raise AssertionError(f"still on the login form after {attempts} sign-ins: {page.url}")


def recording_outside_requests(chromium, settings: Settings, outside: list[str]):
    """A browser context that refuses, and notes in `outside`, every request the browser actually
    sends anywhere but this Superset (routing disables the HTTP cache: not for timed runs)."""
    local = base_url(settings) + "/"

    def refuse(route) -> None:
        outside.append(route.request.url)
        route.abort()

    context = chromium.new_context(viewport=VIEWPORT)
    context.route(lambda url: not url.startswith(local), refuse)
    return context


def dashboards(page, settings: Settings) -> dict[str, Dashboard]:
    """Every dashboard by slug, with its charts, from Superset's REST API (the page's session)."""
    base = base_url(settings)
    listing = page.request.get(f"{base}/api/v1/dashboard/?q=(page_size:100)")
    assert listing.ok, f"GET /api/v1/dashboard/: HTTP {listing.status}"
    found = {}
    for item in listing.json()["result"]:
        charts = page.request.get(f"{base}/api/v1/dashboard/{item['id']}/charts")
        assert charts.ok, f"GET /api/v1/dashboard/{item['id']}/charts: HTTP {charts.status}"
        found[item["slug"]] = Dashboard(item["id"], item["slug"], item["dashboard_title"],
                                        {c["id"]: c["slice_name"] for c in charts.json()["result"]})
    return found


def _slice_id(url: str) -> int | None:
    query = urllib.parse.parse_qs(urllib.parse.urlparse(url).query)
    try:
        return int(json.loads(query["form_data"][0])["slice_id"])
    except (KeyError, ValueError, TypeError):
        return None


def _chart_data(request) -> ChartData:
    response = request.response()
    seconds = max(0.0, request.timing.get("responseEnd", 0)) / 1000
    if response is None:
        return ChartData(0, error=request.failure or "no response", seconds=seconds)
    try:
        body = response.json()
    except ValueError:
        return ChartData(response.status, error=response.text()[:300], seconds=seconds)
    results = body.get("result") or []
    errors = [r.get("error") for r in results if r.get("error")] or ([body["message"]] if body.get("message") else [])
    return ChartData(response.status, sum(int(r.get("rowcount") or 0) for r in results), "; ".join(map(str, errors)) or None,
                     seconds)


def open_dashboard(page, settings: Settings, dashboard: Dashboard, query: str = "", timeout_s: float = 180) -> Rendered:
    """Open a dashboard and wait until every chart's data came back and every chart has drawn;
    the time is from navigation to the last chart drawn."""
    data: dict[int, ChartData] = {}

    def on_done(request) -> None:
        if "/api/v1/chart/data" in request.url and (chart_id := _slice_id(request.url)) in dashboard.charts:
            data[chart_id] = _chart_data(request)

    page.on("requestfinished", on_done)
    page.on("requestfailed", on_done)
    try:
        started = time.monotonic()
        page.goto(f"{base_url(settings)}/superset/dashboard/{dashboard.slug}/{query}")
        deadline = started + timeout_s
        while len(data) < len(dashboard.charts) and time.monotonic() < deadline:
            page.wait_for_timeout(50)
        page.wait_for_function(_ALL_DRAWN_JS, arg=[DRAWN, len(dashboard.charts)],
                               timeout=max(1_000, (deadline - time.monotonic()) * 1000), polling=50)
        seconds = time.monotonic() - started
    finally:
        page.remove_listener("requestfinished", on_done)
        page.remove_listener("requestfailed", on_done)
    return Rendered(dashboard, seconds, data, page.evaluate(_DOM_ERRORS_JS))


def screenshot(page, path: Path) -> Path:
    """The whole dashboard: the viewport grows to the page's height first, since a full-page
    capture of a shorter viewport catches the charts mid-resize."""
    height = page.evaluate("() => document.documentElement.scrollHeight")
    page.set_viewport_size({"width": VIEWPORT["width"], "height": height})
    page.wait_for_timeout(1500)
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path))
    page.set_viewport_size(VIEWPORT)
    return path


def big_number(page, chart_name: str) -> float:
    """The figure a big-number chart shows, as a number (its d3 format's separators removed)."""
    text = page.locator(f'[data-test-chart-name="{chart_name}"] .header-line').inner_text()
    return float(text.replace(",", "").strip())


class Api:
    """Superset's REST API with a bearer token (no browser): for checks where no chromium runs."""

    def __init__(self, settings: Settings) -> None:
        self.base = base_url(settings)
        login = self._call("POST", "/api/v1/security/login", {"username": settings.superset_admin_user,
                                                              "password": settings.superset_admin_password, "provider": "db"})
        self.token = login["access_token"]

    def _call(self, method: str, path: str, body: dict | None = None) -> dict:
        import urllib.request

        headers = {"Content-Type": "application/json"}
        if getattr(self, "token", None):
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(self.base + path, method=method, headers=headers,
                                         data=None if body is None else json.dumps(body).encode())
        with urllib.request.urlopen(request, timeout=120) as response:
            return json.load(response)

    def get(self, path: str) -> dict:
        return self._call("GET", path)

    def metric(self, dataset_id: int, metric: str) -> float:
        """One saved metric of a dataset over all its rows, as /api/v1/chart/data computes it."""
        body = {"datasource": {"id": dataset_id, "type": "table"}, "force": True, "result_format": "json", "result_type": "full",
                "queries": [{"metrics": [metric], "columns": [], "filters": [], "row_limit": 1}]}
        (result,) = self._call("POST", "/api/v1/chart/data", body)["result"]
        return float(result["data"][0][metric])
