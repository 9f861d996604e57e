// The cross-site case: a customer page on another origin embeds the widget from the
// server. Its cookie lives on the customer's domain and the token travels in `hello`.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { extname, join, normalize } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  BASE, eventually, expectText, forbidDialogs, launchQuiet, visible, widget,
} from './lib.mjs';

const root = fileURLToPath(new URL('../../examples/cross-origin/', import.meta.url));
const types = { '.html': 'text/html; charset=utf-8', '.css': 'text/css', '.js': 'text/javascript', '.md': 'text/plain' };
let browser;
let site;
let siteUrl;

before(async () => {
  browser = await launchQuiet();
  // A static server of its own, like `python3 -m http.server`, on another origin: the
  // other spelling of loopback, so the page and the server are different sites.
  site = createServer(async (req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url, 'http://x').pathname)).replace(/^(\.\.[/\\])+/, '');
    const file = join(root, path.endsWith('/') ? `${path}index.html` : path);
    try {
      const body = await readFile(file);
      res.writeHead(200, { 'content-type': types[extname(file)] || 'application/octet-stream' });
      res.end(body);
    } catch {
      res.writeHead(404).end('not found');
    }
  });
  await new Promise((r) => site.listen(0, '127.0.0.1', r));
  const server = new URL(BASE);
  const otherHost = server.hostname === 'localhost' ? '127.0.0.1' : 'localhost';
  siteUrl = `http://${otherHost}:${site.address().port}/?server=${encodeURIComponent(BASE)}`;
});
after(async () => {
  await browser?.close();
  site?.close();
});

test('the widget works embedded in a page on another origin', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  const dialogs = forbidDialogs(page);
  await page.goto(siteUrl);
  assert.notEqual(new URL(page.url()).origin, new URL(BASE).origin);
  await expectText(page.locator('#server'), BASE);
  const w = widget(page);
  await w.open();
  const text = 'Hi! Is the Darjeeling first flush back in stock?';
  await w.send(text);

  // The token is kept in a first-party cookie of the customer's site...
  const own = (await context.cookies(new URL(siteUrl).origin)).find((c) => c.name === 'fd_visitor_token');
  assert.ok(own, 'fd_visitor_token is set on the host page origin');
  // ...and comes back in `hello` after a reload: the history is there.
  await page.reload();
  await w.open();
  await expectText(w.texts, text);
  assert.equal((await w.allTexts()).filter((t) => t === text).length, 1);
  assert.deepEqual(dialogs, []);

  // Another browser profile on the same site is another visitor.
  const other = await browser.newContext();
  const page2 = await other.newPage();
  await page2.goto(siteUrl);
  const w2 = widget(page2);
  await w2.open();
  await visible(page2.getByTestId('fd-empty'));
  assert.equal(await w2.messages.count(), 0);
  await other.close();
  await context.close();
});

test('an inbox that does not allow the page says so, warns the site owner and stops', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  const dialogs = forbidDialogs(page);
  const warnings = [];
  page.on('console', (m) => { if (m.type() === 'warning') warnings.push(m.text()); });
  let sockets = 0;
  page.on('websocket', () => { sockets += 1; });
  // A page of this test's own site (its 404 page: no widget of its own), which the
  // inbox "locked" does not list.
  await page.goto(`${new URL(siteUrl).origin}/no-widget-here`);
  await page.evaluate((src) => {
    const s = document.createElement('script');
    s.src = src;
    s.dataset.inbox = 'locked';
    document.body.appendChild(s);
  }, `${BASE}/widget.js?locked`);
  const w = widget(page);
  await eventually(async () => (await w.status.last().getAttribute('data-state')) === 'off', 'the refusal');
  await expectText(w.status.last(), 'Chat is not available on this site');
  await eventually(async () => warnings.some((t) => t.includes('"locked"') && t.includes('allowed origins')),
    'a console warning for the site owner');
  // It does not retry: one socket, and still one a while later.
  const opened = sockets;
  await page.waitForTimeout(3000);
  assert.equal(sockets, opened, 'no reconnect after 4003');
  assert.deepEqual(dialogs, []);
  await context.close();
});
