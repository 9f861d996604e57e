// The visitor's side: the demo page, the widget, the email prompt, history on reload,
// a second visitor, the away message, and sending while offline.
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { after, before, test } from 'node:test';
import {
  AGENT_TOKEN, BASE, QUIET, convItem, eventually, expectText, forbidDialogs, launch, screenshot, setChatflow,
  signIn, uniq, visible, widget,
} from './lib.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

test('a visitor chats, is asked for their email, leaves it, and finds the history after a reload', async () => {
  await setChatflow(browser, {
    email_capture: { when: 'first_message', delay_secs: 60, message: null },
    away: { mode: 'off', message: null },
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const dialogs = forbidDialogs(page);
  await page.goto(`${BASE}/`);
  const w = widget(page);
  await w.open();
  await visible(page.getByTestId('fd-empty'));

  const question = 'Do you ship the Tourer 8 to Norway?';
  const mine = await w.send(question);
  assert.ok(Number(await mine.getAttribute('data-seq')) >= 1, 'an acked message has its seq');

  // first_message: the prompt comes right after the first message, as an inline form.
  await visible(w.prompt);
  assert.ok((await w.promptText.textContent()).length > 0, 'the prompt has a text');
  await screenshot(page, 'widget-prompt');
  // The server keeps the prompt open too: with the page's own note of it gone, a reload
  // still shows it until it is answered.
  await page.evaluate(() => localStorage.clear());
  await page.reload();
  await w.open();
  await expectText(w.texts, question);
  await visible(w.prompt);
  await w.emailInput.fill('not-an-email');
  await w.emailSubmit.click();
  await visible(w.emailError);
  assert.equal(await w.captured.count(), 0);

  const email = 'ada@example.com';
  await w.emailInput.fill(email);
  await w.emailSubmit.click();
  await visible(w.captured);
  await expectText(w.captured, `Thanks — we’ll reply to ${email}`);
  assert.equal(await w.prompt.count(), 0, 'the form is replaced by the confirmation');
  await screenshot(page, 'widget-open');

  // The token lives in a first-party cookie on the host page's domain.
  const cookie = (await context.cookies(BASE)).find((c) => c.name === 'fd_visitor_token');
  assert.ok(cookie, 'fd_visitor_token cookie is set');
  assert.equal(cookie.sameSite, 'Lax');
  assert.equal(cookie.path, '/');
  const months = (cookie.expires * 1000 - Date.now()) / (30 * 24 * 3600 * 1000);
  assert.ok(months > 12.5 && months < 13.5, `cookie lives about 13 months, not ${months.toFixed(1)}`);

  // Reload: the history is back and, the email being known, no prompt is shown.
  await page.reload();
  await w.open();
  await expectText(w.texts, question);
  assert.deepEqual((await w.allTexts()).filter((t) => t === question).length, 1, 'the message shows once');
  assert.equal(await w.prompt.count(), 0, 'no prompt once the email is known');

  // A second context has no cookies: a new visitor without history.
  const other = await browser.newContext();
  const page2 = await other.newPage();
  await page2.goto(`${BASE}/`);
  const w2 = widget(page2);
  await w2.open();
  await visible(page2.getByTestId('fd-empty'));
  assert.equal(await w2.messages.count(), 0, 'a new visitor sees no history');
  const token1 = cookie.value;
  const token2 = await eventually(async () => (await other.cookies(BASE)).find((c) => c.name === 'fd_visitor_token')?.value, 'the second token');
  assert.notEqual(token1, token2);

  assert.deepEqual(dialogs, []);
  await other.close();
  await context.close();
});

test('messages typed while offline are queued and sent once the connection is back', async () => {
  await setChatflow(browser, QUIET);
  const context = await browser.newContext();
  const page = await context.newPage();
  const dialogs = forbidDialogs(page);
  // Every widget connection goes through this route to the real server; "offline"
  // closes them and refuses new ones, as a dropped network would.
  let online = true;
  const live = [];
  await page.routeWebSocket(/\/ws\/visitor/, (ws) => {
    if (!online) { ws.close({ code: 1001, reason: 'offline' }); return; }
    const server = ws.connectToServer();
    live.push({ ws, server });
  });
  await page.goto(`${BASE}/`);
  const w = widget(page);
  await w.open();
  const first = 'Are you open on Sunday?';
  await w.send(first);

  online = false;
  await context.setOffline(true);
  for (const { ws, server } of live.splice(0)) { await server.close(); await ws.close(); }
  await expectText(w.status, 'Offline');

  const queued = 'Never mind, I found the opening hours. Typed on the train, offline.';
  await w.input.fill(queued);
  await w.input.press('Enter');
  const pending = page.locator('[data-testid=fd-message][data-author=visitor]', { hasText: queued });
  assert.equal(await pending.getAttribute('data-status'), 'pending');
  await page.waitForTimeout(1500); // a few reconnect attempts fail meanwhile
  assert.equal(await pending.getAttribute('data-status'), 'pending');

  online = true;
  await context.setOffline(false);
  await eventually(async () => (await pending.getAttribute('data-status')) === 'sent', 'the queued message to be acked');

  // Exactly once, in order, also as the server has them.
  await page.reload();
  await w.open();
  await expectText(w.texts, queued);
  const texts = await w.allTexts();
  assert.deepEqual(texts.filter((t) => t === first || t === queued), [first, queued]);
  assert.deepEqual(dialogs, []);
  await context.close();
});

test('the away message shows, and the first message gets the away answer and the prompt', async () => {
  const awayText = 'We are out on a test ride until 2 pm. Leave a message and we will get back to you.';
  const promptText = 'Leave your email and a mechanic will write back.';
  await setChatflow(browser, {
    email_capture: { when: 'no_reply', delay_secs: 3600, message: promptText },
    away: { mode: 'always', message: awayText },
  });
  try {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${BASE}/`);
    const w = widget(page);
    await w.open();
    await visible(w.away);
    await expectText(w.away, awayText);
    await w.send('Is the workshop open today?');
    await expectText(page.locator('[data-testid=fd-message][data-author=system]'), awayText);
    await visible(w.prompt);
    await expectText(w.promptText, promptText);
    await context.close();
  } finally {
    await setChatflow(browser, { away: { mode: 'off', message: null } });
  }
});

test('the widget does not leak styles into the host page, nor take any from it', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${BASE}/`);
  const w = widget(page);
  await w.open();
  // The demo page styles every input with a dashed orange border and every button in
  // uppercase serif; none of that reaches inside the widget.
  const inside = await w.input.evaluate((el) => getComputedStyle(el).borderTopStyle);
  assert.notEqual(inside, 'dashed');
  const font = await w.input.evaluate((el) => getComputedStyle(el).fontFamily);
  assert.ok(!/Georgia/.test(font), `widget font is its own, not ${font}`);
  // And the widget's rules don't reach the page: its host stays the only element added.
  const pageBtn = await page.locator('button.cta').evaluate((el) => getComputedStyle(el).textTransform);
  assert.equal(pageBtn, 'uppercase');
  const globals = await page.evaluate(() => Object.keys(window).filter((k) => /frontdesk|^fd/i.test(k)));
  assert.deepEqual(globals, ['FrontdeskWidget']);
  // Small: one script and its stylesheet, no build step, under 20 KB gzipped together
  // (with typing, seen, the unread alerts, two languages and the offline queue).
  let gzipped = 0;
  for (const [file, type] of [['widget.js', /javascript/], ['widget.css', /text\/css/]]) {
    const r = await page.request.get(`${BASE}/${file}`);
    assert.match(r.headers()['content-type'], type);
    const body = await r.body();
    assert.ok(body.length < 40 * 1024, `${file} is ${body.length} bytes`);
    gzipped += gzipSync(body, { level: 9 }).length;
  }
  assert.ok(gzipped < 20 * 1024, `widget.js + widget.css are ${gzipped} bytes gzipped`);
  await context.close();
});

test('a long conversation shows its last page, and "Load earlier" fetches the rest, in both pages', async () => {
  await setChatflow(browser, QUIET);
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${BASE}/`);
  const w = widget(page);
  await w.open();
  const tag = uniq();
  await w.send(`message 1 ${tag}`);
  // 59 more from the same visitor over three extra connections, as three more tabs would
  // (the test's server allows this many sends per visitor).
  const acked = await page.evaluate(async ({ url, tag }) => {
    const token = decodeURIComponent(document.cookie.match(/fd_visitor_token=([^;]*)/)[1]);
    const tab = (from, to) => new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      let n = 0;
      ws.onopen = () => ws.send(JSON.stringify({ type: 'hello', visitor_token: token }));
      ws.onmessage = (e) => {
        const f = JSON.parse(e.data);
        if (f.type === 'welcome') {
          for (let i = from; i <= to; i++) ws.send(JSON.stringify({ type: 'send', client_msg_id: crypto.randomUUID(), text: `message ${i} ${tag}` }));
        } else if (f.type === 'ack' && ++n === to - from + 1) { ws.close(); resolve(n); }
        else if (f.type === 'error') reject(new Error(JSON.stringify(f)));
      };
    });
    // One tab after the other keeps the seq order equal to the numbering.
    let total = 0;
    for (const [a, b] of [[2, 20], [21, 40], [41, 60]]) total += await tab(a, b);
    return total;
  }, { url: `${BASE.replace(/^http/, 'ws')}/ws/visitor?inbox=default`, tag });
  assert.equal(acked, 59);
  await expectText(w.texts, `message 60 ${tag}`); // other tabs' messages show up live

  await page.reload();
  await w.open();
  await expectText(w.texts, `message 60 ${tag}`);
  const earlier = page.getByTestId('fd-load-earlier');
  await visible(earlier);
  const before = (await w.allTexts()).filter((t) => t.endsWith(tag));
  assert.ok(before.length < 60 && before.length >= 10, `one page first, got ${before.length}`);
  assert.ok(!before.includes(`message 1 ${tag}`));
  await earlier.click();
  await expectText(w.texts, `message 1 ${tag}`);
  const all = (await w.allTexts()).filter((t) => t.endsWith(tag));
  assert.deepEqual(all, Array.from({ length: 60 }, (_, i) => `message ${i + 1} ${tag}`), 'all 60, in order, once');
  await eventually(async () => !(await earlier.isVisible()), 'the button to go once all is loaded');

  // The agent's view pages the same way.
  const agentCtx = await browser.newContext();
  const agent = await agentCtx.newPage();
  await signIn(agent, AGENT_TOKEN);
  await (await convItem(agent, `message 60 ${tag}`)).click();
  await expectText(agent.getByTestId('thread-message-text'), `message 60 ${tag}`);
  const agentEarlier = agent.getByTestId('thread-load-earlier');
  await visible(agentEarlier);
  await agentEarlier.click();
  await expectText(agent.getByTestId('thread-message-text'), `message 1 ${tag}`);
  const thread = (await agent.getByTestId('thread-message-text').allTextContents()).filter((t) => t.endsWith(tag));
  assert.deepEqual(thread, all);
  await agentCtx.close();
  await context.close();
});
