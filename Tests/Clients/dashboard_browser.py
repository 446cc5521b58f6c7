"""Drives the dashboard in a real headless Chromium (Playwright with Debian's chromium).

Run by DashboardBrowserTests with the gateway, its keys and the fake provider's control URL.
Each step asserts what a person would see; a screenshot of each page goes to --out.
Exits non-zero (with the failed step on stderr) when something is not as expected.
"""
import argparse
import json
import sys
import urllib.request

from playwright.sync_api import sync_playwright, expect

parser = argparse.ArgumentParser()
parser.add_argument("--admin", required=True)
parser.add_argument("--proxy", required=True)
parser.add_argument("--admin-key", required=True)
parser.add_argument("--viewer-key", required=True)
parser.add_argument("--control", required=True, help="the fake provider, for its /__ switches")
parser.add_argument("--chromium", default="/usr/bin/chromium")
parser.add_argument("--out", required=True)
args = parser.parse_args()


def switch(name):
    urllib.request.urlopen(urllib.request.Request(args.control + "/__" + name, method="POST", data=b"{}"), timeout=10)


def chat():
    request = urllib.request.Request(
        args.proxy + "/anything", method="POST",
        data=json.dumps({"messages": [{"role": "user", "content": "What is 1+1?"}]}).encode(),
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=20) as response:
        assert response.status == 200, response.status
        return response.headers["X-Request-Id"]


def sign_in(page, key):
    page.goto(args.admin + "/ui/")
    page.fill("#key", key)
    page.keyboard.press("Enter")  # the form works from the keyboard
    expect(page.locator("#nav")).to_be_visible()


def shot(page, name):
    page.screenshot(path=f"{args.out}/{name}.png", full_page=True)


with sync_playwright() as p:
    browser = p.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.set_default_timeout(20000)

    # Sign in; the key is in neither the URL nor local storage.
    sign_in(page, args.admin_key)
    assert args.admin_key not in page.url
    assert page.evaluate("JSON.stringify(localStorage)") == "{}"
    assert args.admin_key not in page.evaluate("document.cookie")  # HttpOnly: not even the session id

    # A request that fails over: its trace shows both attempts.
    switch("fail_chat")
    request_id = chat()
    switch("heal_chat")
    for _ in range(3):
        chat()
    page.goto(args.admin + "/ui/#overview")
    expect(page.locator("[data-metric='Requests'] b")).to_have_text("4")
    shot(page, "overview")

    page.goto(args.admin + "/ui/#traces")
    page.fill("#request-id", request_id)
    page.click("#trace-search button")
    row = page.locator(f"tr[data-request-id='{request_id}']")
    expect(row).to_be_visible()
    expect(row.locator("ol.attempts li")).to_have_count(2)
    expect(row.locator("ol.attempts li").first).to_contain_text("a: server, status 500")
    expect(row.locator("ol.attempts li").nth(1)).to_contain_text("b: ok, status 200")
    shot(page, "requests")

    # An instance turns red when its health checks fail, and green again.
    page.goto(args.admin + "/ui/#instances")
    expect(page.locator("tr[data-instance='a']")).to_have_attribute("data-status", "healthy")
    switch("fail_health")
    expect(page.locator("tr[data-instance='a']")).to_have_attribute("data-status", "unhealthy")
    shot(page, "instances")
    switch("heal_health")
    expect(page.locator("tr[data-instance='a']")).to_have_attribute("data-status", "healthy")

    # The quota bar moves after requests.
    page.goto(args.admin + "/ui/#quotas")
    meter = page.locator("tr[data-subject='a'] meter")
    expect(meter).to_be_visible()
    before = float(meter.get_attribute("value"))
    chat()
    page.wait_for_function(
        "before => Number(document.querySelector(\"tr[data-subject='a'] meter\").value) > before", arg=before)
    shot(page, "quotas")

    # Editing a route shows the Admin API's validation message next to the editor.
    page.goto(args.admin + "/ui/#config")
    page.locator("tr[data-id='ai'] button").click()
    text = page.input_value("#resource-json")
    edited = json.loads(text)
    edited["methods"] = ["FETCH"]
    page.fill("#resource-json", json.dumps(edited))
    page.click("#save")
    expect(page.locator("#editor-error")).to_contain_text("methods")
    expect(page.locator("#resource-json")).to_have_class("field-error")
    shot(page, "configuration")

    # Sign out, then the viewer sees everything and can change nothing.
    page.click("#signout")
    expect(page.locator("#signin")).to_be_visible()
    sign_in(page, args.viewer_key)
    page.goto(args.admin + "/ui/#config")
    expect(page.locator("tr[data-id='ai']")).to_be_visible()
    expect(page.locator("#save")).to_be_disabled()
    status = page.evaluate(
        """async () => {
            const session = await (await fetch('/ui/api/session')).json();
            const r = await fetch('/ui/api/admin/routes/ai', {method: 'DELETE', headers: {'X-CSRF-Token': session.csrf}});
            return r.status;
        }""")
    assert status == 403, status
    shot(page, "viewer")
    browser.close()
print("ok")
