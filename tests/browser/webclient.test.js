// The web client (webclient/) in headless Chromium, served by a real node's HTTP
// listener: two browser contexts (two people) sign up, chat, see typing and read
// receipts, page back through history, become friends, share a group; a second tab
// of one user stays signed in; a refused protocol version is readable by page JS.
// A failing test saves a screenshot of every page to test-results/.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import { chromium } from "playwright-core";

import { ParleyClient } from "../../client-js/src/index.js";
import { ROOT, WebSocketClass, startNode } from "../../client-js/test/node.js";

const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
// The machine's network is closed: no first-run, sync, component or QUIC traffic.
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const WAIT_MS = 15_000;
const RESULTS = join(ROOT, "test-results");

/** @type {Awaited<ReturnType<typeof startNode>>} */
let node;
/** @type {import("playwright-core").Browser} */
let browser;
/** @type {string} */
let profiles;
/** Every page opened, for the screenshots of a failure. @type {Map<string, import("playwright-core").Page>} */
const pages = new Map();
const suffix = `${process.pid}`;

before(async () => {
  node = await startNode({ "http.enabled": "true", "http.port": "0" });
  profiles = mkdtempSync(join(tmpdir(), "parley-chromium-"));
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: CHROMIUM_ARGS,
    env: { ...process.env, HOME: profiles, XDG_CONFIG_HOME: profiles, XDG_CACHE_HOME: profiles },
    timeout: 60_000,
  });
});

after(async () => {
  await browser?.close();
  await node?.stop();
  if (profiles) rmSync(profiles, { recursive: true, force: true });
});

/**
 * Run `body`; on failure save a screenshot of every open page, then fail.
 * @param {string} name @param {() => Promise<void>} body
 */
async function withScreenshots(name, body) {
  try {
    await body();
  } catch (error) {
    mkdirSync(RESULTS, { recursive: true });
    for (const [label, page] of pages) {
      const file = join(RESULTS, `${name}-${label}.png`.replace(/[^\w.-]+/g, "_"));
      await page.screenshot({ path: file, fullPage: true }).catch(() => {});
      console.error(`screenshot: ${file}`);
    }
    throw error;
  }
}

/** A page of the web client in `context`, pointed at the test node. @param {import("playwright-core").BrowserContext} context @param {string} label */
async function openClient(context, label) {
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT_MS);
  pages.set(label, page);
  page.on("pageerror", (error) => console.error(`[${label}] page error:`, error));
  const server = encodeURIComponent(node.url);
  await page.goto(`${node.httpUrl}/?server=${server}`);
  return page;
}

/** @param {import("playwright-core").Page} page @param {string} user */
async function signUp(page, user) {
  await page.getByLabel("User id", { exact: true }).nth(1).fill(user);
  await page.getByLabel("Display name").fill(user.split("-")[0]);
  await page.getByLabel("Password", { exact: true }).nth(1).fill("password-1");
  await page.getByRole("button", { name: "Create account and sign in" }).click();
  await page.getByText(`Signed in as ${user}`, { exact: true }).first().waitFor();
}

/** @param {import("playwright-core").Page} page @param {string} text */
async function send(page, text) {
  await page.getByLabel("Message", { exact: true }).fill(text);
  await page.getByRole("button", { name: "Send", exact: true }).click();
  await page.locator("#messages li.mine", { hasText: text }).waitFor();
}

describe("the web client in Chromium", () => {
  const alice = `alice-${suffix}`;
  const bob = `bob-${suffix}`;
  /** @type {import("playwright-core").Page} */
  let alicePage;
  /** @type {import("playwright-core").Page} */
  let bobPage;

  it("is served by the node with its modules", async () => {
    const response = await fetch(`${node.httpUrl}/vendor/msgpack/index.mjs`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type") ?? "", /javascript/);
    const page = await fetch(`${node.httpUrl}/`);
    assert.match(await page.text(), /<title>Parley<\/title>/);
  });

  it("two people sign up, chat, see typing and read receipts", () =>
    withScreenshots("chat", async () => {
      alicePage = await openClient(await browser.newContext(), "alice");
      bobPage = await openClient(await browser.newContext(), "bob");
      // The sign-in page in keyboard order: each field has its label.
      const focused = () => alicePage.evaluate(() => document.activeElement?.id || document.activeElement?.textContent);
      await alicePage.waitForFunction(() => document.activeElement?.id === "signin-user");
      await alicePage.keyboard.press("Tab");
      assert.equal(await focused(), "signin-password");
      await alicePage.keyboard.press("Tab");
      assert.equal(await focused(), "Sign in");
      await alicePage.keyboard.press("Tab");
      assert.equal(await focused(), "signup-user");
      await signUp(alicePage, alice);
      await signUp(bobPage, bob);
      // Signed in, the focus is on the first field of the conversation list.
      assert.equal(await alicePage.evaluate(() => document.activeElement?.id), "newchat-user");

      await alicePage.getByLabel("Chat with user").fill(bob);
      await alicePage.getByRole("button", { name: "Open", exact: true }).click();
      await alicePage.getByRole("heading", { name: bob }).waitFor();
      await send(alicePage, "hello bob");

      // Bob's list shows the unread message; opening the chat marks it read.
      const unread = bobPage.getByRole("button", { name: `${alice}, 1 unread` });
      await unread.click();
      await bobPage.locator("#messages li.theirs", { hasText: "hello bob" }).waitFor();
      await alicePage.getByText(`Read by ${bob} up to message 1`).waitFor();
      assert.match(await alicePage.locator("#messages li.mine").first().innerText(), /read/);

      // Typing is shown, then the reply arrives in the live region.
      await bobPage.getByLabel("Message", { exact: true }).pressSequentially("hi al");
      await alicePage.getByText(`${bob} is typing…`).waitFor();
      await bobPage.getByLabel("Message", { exact: true }).fill("hi alice");
      await bobPage.getByRole("button", { name: "Send", exact: true }).click();
      await alicePage.locator("#messages li.theirs", { hasText: "hi alice" }).waitFor();
      assert.equal(await alicePage.locator("#messages").getAttribute("aria-live"), "polite");
      await bobPage.getByRole("button", { name: alice, exact: true }).waitFor(); // read: no count
    }));

  it("pages back through the history", () =>
    withScreenshots("history", async () => {
      // Alice's phone-like second session sends 40 more (the page shows 30 at a time).
      await bobPage.reload(); // no conversation open: nothing is marked read on arrival
      await bobPage.getByText(`Signed in as ${bob}`, { exact: true }).first().waitFor();
      const sdk = new ParleyClient(node.url, { WebSocket: WebSocketClass });
      await sdk.connect();
      await sdk.login(alice, "password-1", 1);
      for (let i = 1; i <= 40; i++) await sdk.sendText(`numbered ${i}`, { toUserId: bob });
      sdk.close();
      await bobPage.getByRole("button", { name: `${alice}, 40 unread` }).click();
      await bobPage.locator("#messages li", { hasText: "numbered 40" }).waitFor();
      assert.equal(await bobPage.locator("#messages li").count(), 30);
      await bobPage.getByRole("button", { name: "Load older messages" }).click();
      await bobPage.locator("#messages li", { hasText: "hello bob" }).waitFor();
      assert.equal(await bobPage.locator("#messages li").count(), 42);
      assert.equal(await bobPage.getByRole("button", { name: "Load older messages" }).isHidden(), true);
      const seqs = await bobPage.locator("#messages li").evaluateAll((items) => items.map((li) => Number(li.getAttribute("data-seq"))));
      assert.deepEqual(seqs, Array.from({ length: 42 }, (_, i) => i + 1));
    }));

  it("friends: a request is accepted and both lists show it", () =>
    withScreenshots("friends", async () => {
      await bobPage.getByLabel("Add a friend (user id)").fill(alice);
      await bobPage.getByRole("button", { name: "Send request" }).click();
      await bobPage.getByText(`Friend request sent to ${alice}`).waitFor();
      await alicePage.getByRole("button", { name: `Accept ${bob}` }).click();
      await alicePage.getByRole("button", { name: `Chat with ${bob}` }).waitFor();
      await bobPage.getByRole("button", { name: `Chat with ${alice}` }).waitFor();
    }));

  it("groups: create, ask to join, approve, list members, chat", () =>
    withScreenshots("groups", async () => {
      const groupId = `team-${suffix}`;
      await alicePage.getByLabel("New group name").fill("Team");
      await alicePage.getByLabel("Group id (optional)").fill(groupId);
      await alicePage.getByLabel("Who may join").selectOption("approval");
      await alicePage.getByRole("button", { name: "Create group" }).click();
      await alicePage.getByRole("heading", { name: "Team" }).waitFor();

      await bobPage.getByLabel("Join group (id)").fill(groupId);
      await bobPage.getByRole("button", { name: "Join", exact: true }).click();
      await bobPage.getByText(`Asked to join ${groupId}; waiting for approval`).waitFor();
      await alicePage.getByRole("button", { name: `Accept ${bob} into Team` }).click();
      await bobPage.getByRole("button", { name: "Members of Team" }).click();
      await bobPage.locator("#members li", { hasText: `${alice} (owner)` }).waitFor();
      await bobPage.locator("#members li", { hasText: `${bob} (member)` }).waitFor();

      await bobPage.getByRole("button", { name: "Open group Team" }).click();
      await send(bobPage, "hi team");
      await alicePage.locator("#messages li.theirs", { hasText: "hi team" }).waitFor();
    }));

  it("a second tab of the same user stays signed in, and both get messages", () =>
    withScreenshots("tabs", async () => {
      const secondTab = await openClient(bobPage.context(), "bob-tab2");
      // The stored token signs the new tab in (token_login); the first tab stays.
      await secondTab.getByText(`Signed in as ${bob}`, { exact: true }).first().waitFor();
      const thirdTab = await openClient(await browser.newContext(), "bob-tab3");
      await thirdTab.getByRole("button", { name: "Sign in", exact: true }).waitFor();
      await thirdTab.getByLabel("User id", { exact: true }).first().fill(bob);
      await thirdTab.getByLabel("Password", { exact: true }).first().fill("password-1");
      await thirdTab.getByRole("button", { name: "Sign in", exact: true }).click();
      await thirdTab.getByText(`Signed in as ${bob}`, { exact: true }).first().waitFor();

      await alicePage.getByRole("button", { name: bob, exact: true }).click();
      await alicePage.getByRole("heading", { name: bob }).waitFor();
      await send(alicePage, "to every tab");
      for (const tab of [secondTab, thirdTab]) {
        await tab.getByRole("button", { name: `${alice}, 1 unread` }).click();
        await tab.locator("#messages li.theirs", { hasText: "to every tab" }).waitFor();
      }
      await bobPage.getByRole("button", { name: alice, exact: true }).click();
      await bobPage.locator("#messages li.theirs", { hasText: "to every tab" }).waitFor();
      for (const tab of [bobPage, secondTab, thirdTab]) {
        assert.equal(await tab.locator("#app-view").isVisible(), true);
        assert.doesNotMatch(await tab.locator("#status").innerText(), /Signed out|Disconnected/);
      }
    }));

  it("page JS reads why a handshake was refused", () =>
    withScreenshots("refusal", async () => {
      const closed = await alicePage.evaluate(
        (url) =>
          new Promise((resolve) => {
            const ws = new WebSocket(url, ["parley.v2"]);
            let opened = false;
            ws.onopen = () => {
              opened = true;
            };
            ws.onclose = (event) => resolve({ opened, code: event.code, reason: event.reason });
          }),
        node.url,
      );
      assert.deepEqual(closed, {
        opened: true,
        code: 4503,
        reason: "unsupported protocol version (offered: parley.v2); this server speaks: parley.v1",
      });
      const bare = await alicePage.evaluate(
        (url) =>
          new Promise((resolve) => {
            const ws = new WebSocket(url);
            ws.onclose = (event) => resolve([event.code, event.reason]);
          }),
        node.url,
      );
      assert.deepEqual(bare, [4503, "unsupported protocol version (offered: none); this server speaks: parley.v1"]);
    }));
});
