// Shared helpers for the browser tests: the environment, Chromium, waiting, screenshots,
// and a headless agent connection (run inside a Chromium page, so it speaks the real
// WebSocket protocol without any extra npm package).
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

function required(name) {
  const v = process.env[name];
  if (!v) {
    throw new Error(`${name} is not set: run these tests through \`cargo test --test it browser\`, ` +
      'which starts a server and sets FRONTDESK_URL, FRONTDESK_ADMIN_TOKEN and FRONTDESK_AGENT_TOKEN');
  }
  return v;
}

export const BASE = required('FRONTDESK_URL').replace(/\/+$/, '');
export const ADMIN_TOKEN = required('FRONTDESK_ADMIN_TOKEN');
export const AGENT_TOKEN = required('FRONTDESK_AGENT_TOKEN');
export const ARTIFACTS = process.env.FRONTDESK_ARTIFACTS || '';
export const WAIT = 15_000;

/** A short unique suffix so tests sharing one server never collide. */
export function uniq() {
  return Date.now().toString(36) + Math.random().toString(36).slice(2, 6);
}

export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** Collects what must never happen on a page: a JavaScript dialog (alert, confirm,
 * prompt), an uncaught error, or anything its Content-Security-Policy refused (the
 * `securitypolicyviolation` event, and Chromium's own console line). Call it before the
 * page navigates; assert the returned list is empty. */
export function forbidDialogs(page) {
  const fired = [];
  page.on('dialog', async (d) => { fired.push(`${d.type()}: ${d.message()}`); await d.dismiss(); });
  page.on('pageerror', (e) => fired.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) fired.push(`CSP: ${m.text()}`);
  });
  page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      console.error(`Content Security Policy violation: ${e.violatedDirective} blocked ${e.blockedURI || 'inline'}`);
    });
  });
  return fired;
}

export async function screenshot(page, name) {
  if (!ARTIFACTS) return;
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), animations: 'disabled' });
}

/** Polls until fn() returns a truthy value, else fails with the last value seen. */
export async function eventually(fn, what, timeout = WAIT) {
  const until = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > until) assert.fail(`timed out waiting for ${typeof what === 'function' ? what() : what}; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Waits until one of the elements the locator matches has a text containing `text`. */
export async function expectText(locator, text, timeout = WAIT) {
  let seen = [];
  await eventually(async () => {
    seen = await locator.allTextContents();
    return seen.some((t) => t.includes(text));
  }, () => `text ${JSON.stringify(text)} (seen: ${JSON.stringify(seen).slice(0, 300)})`, timeout);
}

export async function visible(locator, timeout = WAIT) {
  await locator.first().waitFor({ state: 'visible', timeout });
}

export async function hidden(locator, timeout = WAIT) {
  await locator.first().waitFor({ state: 'hidden', timeout });
}

// ---- the widget -----------------------------------------------------------------

export function widget(page) {
  return {
    launcher: page.getByTestId('fd-launcher'),
    panel: page.getByTestId('fd-panel'),
    input: page.getByTestId('fd-input'),
    messages: page.getByTestId('fd-message'),
    texts: page.getByTestId('fd-message-text'),
    prompt: page.getByTestId('fd-email-prompt'),
    promptText: page.getByTestId('fd-email-prompt-text'),
    emailInput: page.getByTestId('fd-email-input'),
    emailSubmit: page.getByTestId('fd-email-submit'),
    emailError: page.getByTestId('fd-email-error'),
    captured: page.getByTestId('fd-email-captured'),
    away: page.getByTestId('fd-away'),
    status: page.getByTestId('fd-status'),
    async open() {
      await visible(this.launcher);
      if (!(await this.panel.isVisible())) await this.launcher.click();
      await visible(this.panel);
      await eventually(async () => ['online', 'away'].includes(await this.status.getAttribute('data-state')), 'the widget to connect');
    },
    /** Types and sends a message, then waits for its ack. */
    async send(text) {
      await this.input.fill(text);
      await this.input.press('Enter');
      const mine = page.locator('[data-testid=fd-message][data-author=visitor]', { hasText: text }).last();
      await eventually(async () => (await mine.getAttribute('data-status')) === 'sent', `ack of ${JSON.stringify(text)}`);
      return mine;
    },
    async allTexts() {
      return this.texts.allTextContents();
    },
  };
}

// ---- the inbox page ----------------------------------------------------------------

/** Signs the page in with `token`. A browser context already signed in (its session
 * cookie) is signed out first, so the page is surely this token's agent. */
export async function signIn(page, token) {
  await page.goto(`${BASE}/inbox`);
  const form = page.getByTestId('signin-token');
  await eventually(async () => (await form.isVisible()) || (await page.getByTestId('app').isVisible()), 'the sign-in form or the inbox');
  if (!(await form.isVisible())) {
    await page.getByTestId('signout').click();
    await visible(form);
  }
  await form.fill(token);
  await page.getByTestId('signin-submit').click();
  await eventually(async () => (await page.getByTestId('conn-status').getAttribute('data-state')) === 'online', 'the inbox to connect');
}

/** The list item of the conversation whose preview shows `text`, pinned by its id so
 * it stays found when the preview changes. */
export async function convItem(page, text) {
  const byText = page.getByTestId('conv-item').filter({ hasText: text });
  await visible(byText);
  const id = await byText.first().getAttribute('data-conversation-id');
  return page.locator(`[data-testid=conv-item][data-conversation-id="${id}"]`);
}

// ---- a headless agent over the real WebSocket ------------------------------------------

/** Opens an agent connection inside a blank page of the server's origin. */
export async function agentSocket(browser, token) {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${BASE}/healthz`);
  const ready = await page.evaluate(({ url, token }) => new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    window.__fd = { ws, frames: [] };
    ws.onopen = () => ws.send(JSON.stringify({ type: 'auth', token }));
    ws.onmessage = (e) => {
      const f = JSON.parse(e.data);
      window.__fd.frames.push(f);
      if (f.type === 'ready') resolve(f);
    };
    ws.onclose = (e) => reject(new Error(`agent socket closed: ${e.code}`));
  }), { url: `${BASE.replace(/^http/, 'ws')}/ws/agent`, token });
  let seen = 0;
  return {
    ready,
    async send(frame) {
      await page.evaluate((f) => window.__fd.ws.send(JSON.stringify(f)), frame);
    },
    /** The next frame (after the last one returned) whose type is one of `types`. */
    async next(...types) {
      const handle = await page.waitForFunction(({ from, types }) => {
        const fr = window.__fd.frames;
        for (let i = from; i < fr.length; i++) if (types.includes(fr[i].type)) return { i, f: fr[i] };
        return null;
      }, { from: seen, types }, { timeout: WAIT });
      const { i, f } = await handle.jsonValue();
      seen = i + 1;
      return f;
    },
    /** Every frame received so far. */
    async frames() { return page.evaluate(() => window.__fd.frames); },
    async close() { await context.close(); },
  };
}

// ---- a customer's site on another origin ---------------------------------------------

/** A site of its own on the other spelling of loopback (so it and the chat server are
 * different sites), serving `pages`: path -> { body, headers } (HTML unless the headers
 * say otherwise). `url(path)` is a page's address; `close()` stops it. */
export async function hostSite(pages) {
  const site = createServer((req, res) => {
    const page = pages[new URL(req.url, 'http://x').pathname];
    if (!page) { res.writeHead(404).end('not found'); return; }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', ...page.headers });
    res.end(page.body);
  });
  await new Promise((r) => site.listen(0, '127.0.0.1', r));
  const otherHost = new URL(BASE).hostname === 'localhost' ? '127.0.0.1' : 'localhost';
  const origin = `http://${otherHost}:${site.address().port}`;
  return { origin, url: (path) => origin + path, close: () => new Promise((r) => site.close(r)) };
}

/** The Content-Security-Policy a site needs for the widget (README), nothing more: no
 * 'unsafe-inline' anywhere. */
export const STRICT_CSP = `default-src 'self'; script-src 'self' ${BASE}; style-src 'self' ${BASE}; ` +
  `connect-src ${BASE.replace(/^http/, 'ws')}; img-src 'self' data:`;

/** A host page of a shop with the widget, its attributes given as `data`. */
export function shopPage(title, data = {}, links = '') {
  const attrs = Object.entries({ inbox: 'default', ...data }).map(([k, v]) => ` data-${k}="${v}"`).join('');
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${title}</title>` +
    `<meta name="viewport" content="width=device-width, initial-scale=1"></head>` +
    `<body><main><h1>${title}</h1>${links}</main><script src="${BASE}/widget.js"${attrs} async></script></body></html>`;
}

/** A chatflow that never prompts for an email nor answers away: a plain chat. */
export const QUIET = { email_capture: { when: 'never' }, away: { mode: 'off', message: null } };

/** Chromium, with the default inbox set to the [QUIET] chatflow. */
export async function launchQuiet() {
  const browser = await launch();
  await setChatflow(browser, QUIET);
  return browser;
}

/** Sets the chatflow of an inbox through the admin's agent connection. */
export async function setChatflow(browser, patch, inbox = 'default') {
  const agent = await agentSocket(browser, ADMIN_TOKEN);
  try {
    await agent.send({ type: 'get_chatflow', inbox });
    const current = (await agent.next('chatflow', 'error')).chatflow || {};
    const chatflow = {
      ...current,
      ...patch,
      email_capture: { ...current.email_capture, ...patch.email_capture },
      away: { ...current.away, ...patch.away },
    };
    await agent.send({ type: 'update_chatflow', inbox, chatflow });
    const f = await agent.next('chatflow', 'error');
    assert.equal(f.type, 'chatflow', `update_chatflow failed: ${JSON.stringify(f)}`);
    return f.chatflow;
  } finally {
    await agent.close();
  }
}
