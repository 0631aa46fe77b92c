"""The console in a real browser: Debian's Chromium driven by Playwright against `deskbridge serve`
in its embedded mode (SQLite, worker threads, emails written to a folder), one browser for the module.

Set DESKBRIDGE_SCREENSHOTS=docs/ to write the README's screenshots (docs/console-*.png) on the way.
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from store.columns import utcnow
from store.db import make_engine, make_session_factory, transaction
from store.models import ApiToken, MemberStatus
from store.services import bookings, desks, members, organisations, teams, tokens
from tests.conftest import unavailable

if sys.platform != "linux":  # pragma: no cover - the project's machines are Linux
    pytest.skip("the browser tests run on Linux", allow_module_level=True)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
BIN = Path(sys.executable).parent
TOKEN = re.compile(r"dsk_[A-Za-z0-9_-]{43}")
SCREENSHOTS = os.environ.get("DESKBRIDGE_SCREENSHOTS")
WAIT = 120.0  # seconds a step (serve starting, an email, a webhook) may take before the test fails: CI can be busy
ADMIN = "admin@example.com"
ZONE = "Europe/Berlin"


@dataclass
class Served:
    base: str
    mail_dir: Path
    admin_token: str
    factory: sessionmaker[Session]


@dataclass
class Receiver:
    """A webhook receiver on loopback: every POST it got, in order."""

    url: str
    posts: list[dict[str, Any]] = field(default_factory=list)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _until(what: str, check: Callable[[], Any]) -> Any:
    """Poll `check` until it returns something truthy; fail naming `what` after WAIT seconds."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    pytest.fail(f"waited {WAIT:.0f} s for {what}")


@pytest.fixture(scope="module")
def playwright_api() -> Any:
    if not CHROMIUM.exists():
        unavailable("Chromium", f"{CHROMIUM} is missing (apt-get install chromium)")
    try:
        from playwright import sync_api
    except ImportError as error:
        unavailable("Playwright", f"the playwright package is not installed ({error})")
    return sync_api


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("console")
    port = _free_port()
    database_url = f"sqlite:///{folder / 'deskbridge.db'}"
    env = {key: value for key, value in os.environ.items() if not key.startswith("DESKBRIDGE_")} | {
        "DESKBRIDGE_DATABASE_URL": database_url,
        "DESKBRIDGE_PORT": str(port),
        "DESKBRIDGE_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "DESKBRIDGE_MAIL_DIR": str(folder / "mail"),
        "DESKBRIDGE_SECRET_KEY_FILE": str(folder / "secret.key"),
        "DESKBRIDGE_LOG_LEVEL": "WARNING",
    }
    subprocess.run([str(BIN / "deskbridge"), "db", "upgrade"], env=env, cwd=folder, check=True, capture_output=True)
    log = folder / "serve.log"
    with log.open("wb") as handle:
        process = subprocess.Popen(
            [str(BIN / "deskbridge"), "serve"], env=env, cwd=folder, stdout=handle, stderr=subprocess.STDOUT
        )
    base = env["DESKBRIDGE_PUBLIC_BASE_URL"]

    def ready() -> bool:
        if process.poll() is not None:
            pytest.fail(f"deskbridge serve stopped:\n{log.read_text()}")
        try:
            return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    _until("deskbridge serve to answer", ready)
    found = TOKEN.search(log.read_text())
    assert found, log.read_text()
    engine = make_engine(database_url)
    with transaction(make_session_factory(engine)) as db:  # times are shown in the organisation's zone
        organisations.update_settings(db, organisations.get(db, 1), timezone=ZONE)
    try:
        yield Served(base, folder / "mail", found.group(0), make_session_factory(engine))
    finally:
        engine.dispose()
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def browser(playwright_api: Any) -> Iterator[Any]:
    with playwright_api.sync_playwright() as driver:
        chromium = driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def new_page(browser: Any) -> Iterator[Callable[[], Any]]:
    """Pages of their own browser contexts (their own cookies); confirmation dialogs are accepted."""
    contexts: list[Any] = []

    def make() -> Any:
        context = browser.new_context(viewport={"width": 1280, "height": 860})
        context.set_default_timeout(WAIT * 1000)
        contexts.append(context)
        page = context.new_page()
        page.on("dialog", lambda dialog: dialog.accept())
        return page

    yield make
    for context in contexts:
        context.close()


@contextmanager
def _receiving() -> Iterator[Receiver]:
    """A webhook receiver on loopback, for as long as the block runs."""
    got = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            got.posts.append({"headers": dict(self.headers), "body": json.loads(body)})
            self.send_response(200)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    got.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    try:
        yield got
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with _receiving() as got:
        yield got


def _mail_link(served: Served, recipient: str, path: str) -> str:
    """The newest link to `path` in an email to `recipient` (waiting for the worker to write it)."""
    pattern = re.compile(rf"{re.escape(served.base)}{re.escape(path)}\S+")

    def newest() -> str | None:
        for mail in sorted(served.mail_dir.glob(f"*{recipient}.eml"), reverse=True):
            message = email.message_from_bytes(mail.read_bytes(), policy=email.policy.default)
            body = message.get_body(("plain",)) if isinstance(message, EmailMessage) else None
            found = pattern.search(body.get_content()) if body is not None else None
            if found:
                return found.group(0)
        return None

    link: str = _until(f"an email to {recipient} with a {path} link", newest)
    return link


def _shot(page: Any, name: str) -> None:
    if SCREENSHOTS:
        folder = Path(SCREENSHOTS)
        folder.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(folder / f"console-{name}.png"), full_page=True)


def _sign_in_with_token(page: Any, served: Served, token: str) -> None:
    page.goto(f"{served.base}/console/sign-in")
    page.get_by_label("API token", exact=True).fill(token)
    page.get_by_role("button", name="Sign in with the token").click()
    page.wait_for_url("**/console/bookings")


def _member(served: Served, email: str, *, api_access: bool = True) -> tuple[int, str]:
    """An active member of the first organisation with an API token."""
    with transaction(served.factory) as db:
        member = members.add(db, 1, email, display_name=email.split("@")[0].title(), api_access=api_access)
        _, secret = tokens.create(db, member)
        return member.id, secret


def test_sign_in_by_emailed_link(served: Served, new_page: Callable[[], Any]) -> None:
    page = new_page()
    page.goto(f"{served.base}/console/")
    page.wait_for_url("**/console/sign-in")
    page.get_by_label("Your work email").fill(ADMIN)
    page.get_by_role("button", name="Email me a link").click()
    page.get_by_text("a sign-in link is on its way").wait_for()

    link = _mail_link(served, ADMIN, "/console/sign-in/link/")
    page.goto(link)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/console/bookings")
    assert page.get_by_role("heading", name="My bookings").is_visible()
    assert page.get_by_text(ADMIN).is_visible()

    other = new_page()  # the link worked once
    other.goto(link)
    assert other.get_by_text("not valid or was used already").is_visible()


def test_member_creates_a_token_and_cancels_a_booking(served: Served, new_page: Callable[[], Any]) -> None:
    member_id, secret = _member(served, "will@example.com")
    start = utcnow().replace(minute=0, second=0, microsecond=0) + timedelta(days=2)
    with transaction(served.factory) as db:
        member = members.get(db, 1, member_id)
        bookings.create(db, member, start=start, end=start + timedelta(hours=8))
        bookings.create(db, member, start=start + timedelta(days=1), end=start + timedelta(days=1, hours=8))
    page = new_page()
    _sign_in_with_token(page, served, secret)

    page.get_by_role("link", name="API tokens").click()
    page.get_by_label("Name (to tell tokens apart)").fill("laptop")
    page.get_by_role("button", name="Create a token").click()
    shown = page.get_by_role("textbox", name=re.compile("Your new token")).input_value()
    assert TOKEN.fullmatch(shown)
    assert httpx.get(f"{served.base}/v1/organisation", headers={"Authorization": f"token {shown}"}).status_code == 200
    assert page.get_by_role("cell", name="laptop", exact=True).is_visible()
    page.reload()  # shown once: not on the page again
    assert shown not in page.content()

    page.get_by_role("link", name="My bookings").click()
    _shot(page, "bookings")
    rows = page.locator("table").first.locator("tbody tr")
    assert rows.count() == 2
    assert f"{start.astimezone(ZoneInfo(ZONE)):%a %d %b %Y, %H:%M}" in rows.first.inner_text()
    rows.first.get_by_role("button", name="Cancel booking").click()
    page.get_by_text("Booking cancelled.").wait_for()
    assert page.locator("table").first.locator("tbody tr").count() == 1
    assert page.locator("table").nth(1).get_by_role("cell", name="cancelled").is_visible()


def test_admin_invites_someone(served: Served, new_page: Callable[[], Any]) -> None:
    page = new_page()
    _sign_in_with_token(page, served, served.admin_token)
    page.get_by_role("link", name="Users").click()
    page.get_by_label("Email").fill("nia@example.com")
    page.get_by_label("Name", exact=True).fill("Nia")
    page.get_by_role("button", name="Send invitation").click()
    page.get_by_text("Invitation sent to nia@example.com.").wait_for()
    assert page.get_by_role("cell", name="nia@example.com").first.is_visible()

    link = _mail_link(served, "nia@example.com", "/invitations/")
    invitee = new_page()
    invitee.goto(link)
    invitee.get_by_role("button", name="Accept invitation").click()
    invitee.get_by_text("is now a member").wait_for()
    invitee.get_by_role("link", name="open the console").click()  # accepting signed her in
    invitee.wait_for_url("**/console/bookings")
    assert invitee.get_by_text("nia@example.com").is_visible()


def test_admin_connects_a_csv_directory_and_imports_it(
    served: Served, new_page: Callable[[], Any], tmp_path: Path
) -> None:
    export = tmp_path / "people.csv"
    export.write_text("email,name,teams\nomar@example.com,Omar,Design\npia@example.com,Pia,Design;Sales\n")
    page = new_page()
    _sign_in_with_token(page, served, served.admin_token)
    page.get_by_role("link", name="Connections").click()
    page.get_by_label("Kind").select_option("csv")
    page.get_by_label("Name").fill("HR export")
    page.get_by_role("button", name="Add connection").click()
    page.get_by_text("Connection HR export added.").wait_for()

    page.get_by_label("CSV file").set_input_files(str(export))
    page.get_by_role("button", name="Import").click()
    result = page.locator("#import-result")
    result.wait_for()
    assert "Imported 2 row(s)" in result.inner_text()
    assert "omar@example.com" in result.inner_text()
    _shot(page, "connection")
    with served.factory() as db:
        assert members.get_by_email(db, 1, "pia@example.com").status is MemberStatus.INVITED

    page.get_by_role("link", name="All connections").click()
    row = page.get_by_role("row", name=re.compile("HR export"))
    assert "never" not in row.inner_text()  # the import is its last sync


def test_admin_creates_a_webhook_and_replays_a_delivery(
    served: Served, new_page: Callable[[], Any], receiver: Receiver
) -> None:
    page = new_page()
    _sign_in_with_token(page, served, served.admin_token)
    page.get_by_role("link", name="Webhooks").click()
    page.get_by_label("URL (public http or https)").fill(receiver.url)
    page.get_by_label("desk.created").check()
    page.get_by_role("button", name="Add endpoint").click()
    assert page.get_by_role("textbox", name="Keep this signing secret now.").input_value().startswith("whsec_")

    page.get_by_role("link", name="Desks & teams").click()
    page.get_by_label("Label").fill("A1")
    page.get_by_role("button", name="Add desk").click()
    page.get_by_text("Desk A1 added.").wait_for()
    _until("the desk.created webhook", lambda: receiver.posts)
    first = receiver.posts[0]
    assert first["body"]["type"] == "desk.created"

    page.get_by_role("link", name="Webhooks").click()
    page.get_by_role("link", name=receiver.url).click()

    def delivered() -> bool:
        page.reload()
        return "succeeded" in page.locator("table").last.inner_text()

    _until("the delivery to show as succeeded", delivered)
    _shot(page, "webhook")
    page.locator("table").last.get_by_role("button", name="Replay desk.created").first.click()
    page.get_by_text("queued again").wait_for()
    _until("the replayed webhook", lambda: len(receiver.posts) >= 2)
    assert receiver.posts[1]["headers"]["webhook-id"] == first["headers"]["webhook-id"]


def test_a_form_without_its_csrf_token_is_refused(served: Served, new_page: Callable[[], Any]) -> None:
    member_id, secret = _member(served, "csrf@example.com")
    page = new_page()
    _sign_in_with_token(page, served, secret)
    page.get_by_role("link", name="API tokens").click()
    page.locator("form[action='/console/tokens'] input[name=csrf_token]").evaluate("field => field.remove()")
    with page.expect_response(lambda answer: answer.url.endswith("/console/tokens")) as posted:
        page.get_by_role("button", name="Create a token").click()
    assert posted.value.status == 403
    assert page.get_by_text("did not come from the console").is_visible()
    with served.factory() as db:
        count = db.scalar(select(func.count()).select_from(ApiToken).where(ApiToken.member_id == member_id))
    assert count == 1  # only the seeded one


def test_a_removed_members_session_stops_working(served: Served, new_page: Callable[[], Any]) -> None:
    _, secret = _member(served, "leaver@example.com")
    leaver = new_page()
    _sign_in_with_token(leaver, served, secret)

    admin = new_page()
    _sign_in_with_token(admin, served, served.admin_token)
    admin.get_by_role("link", name="Users").click()
    admin.get_by_role("row", name=re.compile("leaver@example.com")).get_by_role("button", name="Remove").click()
    admin.get_by_text("leaver@example.com was removed.").wait_for()

    leaver.reload()
    leaver.wait_for_url("**/console/sign-in")
    assert leaver.get_by_role("heading", name="Sign in to the console").is_visible()


def test_the_sign_in_form_works_from_the_keyboard(served: Served, new_page: Callable[[], Any]) -> None:
    page = new_page()
    page.goto(f"{served.base}/console/sign-in")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "email"
    page.keyboard.type("nobody@example.com")
    page.keyboard.press("Enter")
    page.get_by_text("If nobody@example.com belongs to a member").wait_for()


# Every page of the console, as an admin sees it.
PAGES = (
    "/console/bookings",
    "/console/tokens",
    "/console/feed",
    "/console/admin/organisation",
    "/console/admin/users",
    "/console/admin/desks",
    "/console/admin/connections",
    "/console/admin/connections/{connection}",
    "/console/admin/webhooks",
    "/console/admin/webhooks/{webhook}",
    "/console/admin/events",
)
# axe-core's rules for WCAG 2.0, 2.1 and 2.2 at levels A and AA (labels, names, contrast, landmarks…).
WCAG = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]}}


@pytest.fixture(scope="module")
def axe() -> Any:
    try:
        from axe_playwright_python.sync_playwright import Axe
    except ImportError as error:
        unavailable("axe-core", f"the axe-playwright-python package is not installed ({error})")
    return Axe()


@pytest.fixture(scope="module")
def filled(served: Served) -> Iterator[dict[str, int]]:
    """Something on every page: a desk and a booking, a team, a connection, a webhook with a delivery.
    The ids of the connection and the webhook."""
    with _receiving() as got:
        with transaction(served.factory) as db:
            admin = members.get_by_email(db, 1, ADMIN)
            desk = desks.create(db, 1, "Quiet 1", building="HQ", floor="2")
            start = utcnow().replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
            bookings.create(db, admin, desk_id=desk.id, start=start, end=start + timedelta(hours=4))
            team = teams.create(db, 1, "Quiet")
            teams.add_member(db, team, admin)
        with httpx.Client(base_url=served.base, headers={"Authorization": f"token {served.admin_token}"}) as api:
            connection = api.post("/v1/connections", json={"kind": "csv", "name": "Staff list"})
            made = api.post("/v1/webhooks", json={"url": got.url, "event_types": ["desk.*"]})
            assert made.status_code == 201, made.text
            assert api.post("/v1/desks", json={"label": "Quiet 2"}).status_code == 201
        _until("a delivery", lambda: got.posts)
        yield {"connection": connection.json()["id"], "webhook": made.json()["id"]}


def test_every_page_meets_wcag_aa_in_chromium(
    served: Served, new_page: Callable[[], Any], filled: dict[str, int], axe: Any
) -> None:
    """axe-core in the real browser: labels, accessible names, contrast, structure, on every page."""
    page = new_page()
    _sign_in_with_token(page, served, served.admin_token)
    found = {}
    for path in PAGES:
        page.goto(served.base + path.format(**filled))
        results = axe.run(page, options=WCAG)
        if results.violations_count:
            found[path] = results.generate_report()
    assert not found, "\n".join(f"{path}:\n{report}" for path, report in found.items())


def test_every_control_is_reached_by_tab_and_shows_its_focus(
    served: Served, new_page: Callable[[], Any], filled: dict[str, int]
) -> None:
    """Tab alone reaches every link, button and field of a page, in order, each with a visible focus ring."""
    page = new_page()
    _sign_in_with_token(page, served, served.admin_token)
    for path in ("/console/admin/users", "/console/admin/webhooks/{webhook}", "/console/bookings"):
        page.goto(served.base + path.format(**filled))
        count = page.evaluate(
            """() => {
                const controls = 'a[href], button, input:not([type=hidden]), select, textarea';
                const all = [...document.querySelectorAll(controls)];
                all.forEach((element, index) => { element.dataset.k = String(index); });
                return all.length;
            }"""
        )
        reached: list[str | None] = []
        rings = set()
        for _ in range(count * 8):  # a date-time field takes a Tab for each of its parts
            page.keyboard.press("Tab")
            key, ring = page.evaluate(
                """() => {
                    const element = document.activeElement;
                    const style = getComputedStyle(element);
                    return [element.dataset.k ?? null, style.outlineStyle !== 'none' && style.outlineWidth !== '0px'];
                }"""
            )
            if reached and reached[-1] == key:
                continue
            reached.append(key)
            rings.add(ring)
            if key == str(count - 1):
                break
        assert reached == [str(index) for index in range(count)], path  # in document order, none skipped
        assert rings == {True}, path


def test_admin_restores_a_removed_member(served: Served, new_page: Callable[[], Any], axe: Any) -> None:
    member_id, _ = _member(served, "back@example.com")
    start = utcnow().replace(minute=0, second=0, microsecond=0) + timedelta(days=3)
    with transaction(served.factory) as db:
        desk = desks.create(db, 1, "Window 4")
        bookings.create(db, members.get(db, 1, member_id), desk_id=desk.id, start=start, end=start + timedelta(hours=6))
    page = new_page()
    _sign_in_with_token(page, served, served.admin_token)
    page.get_by_role("link", name="Users").click()
    row = page.get_by_role("row", name=re.compile("back@example.com"))
    row.get_by_role("button", name="Remove").click()
    page.get_by_text("back@example.com was removed.").wait_for()

    page.get_by_role("row", name=re.compile("back@example.com")).get_by_role("button", name="Restore").click()
    page.get_by_role("heading", name="back@example.com is restored").wait_for()
    assert "is a member again, with API access" in page.locator("#restore-result").inner_text()
    assert TOKEN.fullmatch(page.get_by_role("textbox", name=re.compile("New token")).input_value())
    assert f"{start.astimezone(ZoneInfo(ZONE)):%a %d %b %Y, %H:%M}" in page.content()
    _shot(page, "restored")
    checked = axe.run(page, options=WCAG)
    assert not checked.violations_count, checked.generate_report()
    page.get_by_role("link", name="All users").click()
    assert "active" in page.get_by_role("row", name=re.compile("back@example.com")).inner_text()
    with served.factory() as db:
        assert members.get(db, 1, member_id).status is MemberStatus.ACTIVE


def test_admin_sees_held_removals_and_approves_them(served: Served, new_page: Callable[[], Any], axe: Any) -> None:
    """A CSV import that would remove more people than the limit allows holds them; an admin approves."""
    with httpx.Client(base_url=served.base, headers={"Authorization": f"token {served.admin_token}"}) as api:
        made = api.post(
            "/v1/connections",
            json={"kind": "csv", "name": "Payroll", "settings": {"removal_limit": {"people": 1, "percent": 0}}},
        )
        assert made.status_code == 201, made.text
        connection_id = made.json()["id"]
        everyone = "email,name\n" + "".join(f"p{n}@example.com,P{n}\n" for n in range(5))
        for text in (everyone, "email,name\np0@example.com,P0\n"):
            assert api.post(f"/v1/connections/{connection_id}/import", json={"csv": text}).status_code == 200
    page = new_page()
    _sign_in_with_token(page, served, served.admin_token)
    page.get_by_role("link", name="Connections").click()
    assert "removals held" in page.get_by_role("row", name=re.compile("Payroll")).inner_text()
    page.get_by_role("link", name="Payroll").click()
    page.get_by_role("link", name=re.compile("held removals")).click()
    page.get_by_role("heading", name="Removals held on Payroll").wait_for()
    for n in range(1, 5):
        assert page.get_by_role("cell", name=f"p{n}@example.com").is_visible()
    _shot(page, "held")
    checked = axe.run(page, options=WCAG)
    assert not checked.violations_count, checked.generate_report()
    page.get_by_role("button", name="Approve the removals").click()
    page.get_by_text("Approved: removed 4.").wait_for()
    with served.factory() as db:
        assert members.get_by_email(db, 1, "p3@example.com").status is MemberStatus.REMOVED
        assert members.get_by_email(db, 1, "p0@example.com").status is not MemberStatus.REMOVED
