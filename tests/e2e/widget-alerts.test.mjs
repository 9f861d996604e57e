// The visitor's side of the inbox workflow: the agent's typing, the visitor's own typing,
// `seen` sent only while the chat is open and the page visible, "Seen" on the visitor's
// messages, and the unread badge, preview bubble and title flash of a reply that came
// while the chat was closed, also after a reload and across tabs. Then the widget defects
// of the UX review that this touches: Retry as a button in its place, Tab kept in the
// phone's full-screen panel, readable text on a light brand colour, dates on old messages.
// The agent is a headless socket; a tap on the widget's socket records what it sends and
// can hand it frames (to time out a typing state the server would end itself).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  AGENT_TOKEN, BASE, agentSocket, eventually, expectText, forbidDialogs, hidden, launchQuiet, screenshot, uniq,
  visible, widget,
} from './lib.mjs';

const AGENT_NAME = 'Maja Berg'; // the agent AGENT_TOKEN belongs to (tests/it/browser.rs)

let browser;
before(async () => {
  browser = await launchQuiet();
});
after(async () => { await browser?.close(); });

/** A visitor on the demo page whose widget connections pass through a tap: `sent` is
 * every frame the widget sent, and `inject` hands the widget a frame as if from the
 * server. */
async function visitor() {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const dialogs = forbidDialogs(page);
  const sent = [];
  let route = null;
  const tap = { failNext: null };
  await page.routeWebSocket(/\/ws\/visitor/, (ws) => {
    const server = ws.connectToServer();
    route = ws;
    ws.onMessage((m) => {
      const f = JSON.parse(m);
      sent.push(f);
      if (f.type === 'send' && tap.failNext) {
        ws.send(JSON.stringify({ type: 'error', code: tap.failNext, message: 'server text', ref: f.client_msg_id }));
        tap.failNext = null;
      } else server.send(m);
    });
  });
  await page.goto(`${BASE}/`);
  const w = widget(page);
  return {
    context, page, w, sent, dialogs, tap,
    badge: page.getByTestId('fd-badge'),
    preview: page.getByTestId('fd-preview'),
    typing: page.getByTestId('fd-typing'),
    mine: page.locator('[data-testid=fd-message][data-author=visitor]'),
    sentOf: (type) => sent.filter((f) => f.type === type),
    inject: (frame) => route.send(JSON.stringify(frame)),
    async setHidden(h) {
      await page.evaluate((h) => {
        Object.defineProperty(document, 'hidden', { configurable: true, get: () => h });
        Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => (h ? 'hidden' : 'visible') });
        document.dispatchEvent(new Event('visibilitychange'));
      }, h);
    },
    async close() { await page.getByTestId('fd-close').click(); await hidden(w.panel); },
  };
}

/** The agent's view of a visitor's first message: its conversation id and seq. */
async function agentSees(agent, text) {
  for (;;) {
    const f = await agent.next('message');
    if (f.message.text === text) return f.message;
  }
}

/** An agent's reply, waited for until acked. */
async function reply(agent, conversationId, text) {
  await agent.send({ type: 'reply', conversation_id: conversationId, client_msg_id: crypto.randomUUID(), text });
  const f = await agent.next('ack', 'error');
  assert.equal(f.type, 'ack', `reply failed: ${JSON.stringify(f)}`);
  return f.message;
}

/** A visitor with a conversation, and the agent's socket on it. */
async function conversation() {
  const v = await visitor();
  const agent = await agentSocket(browser, AGENT_TOKEN);
  await v.w.open();
  const first = `Does the Cargo Long fit two child seats? ${uniq()}`;
  await v.w.send(first);
  const m = await agentSees(agent, first);
  return { v, agent, id: m.conversation_id, first: m };
}

test("the agent's typing shows in the widget and goes on active:false, on their reply, and after 6 s", async () => {
  const { v, agent, id } = await conversation();
  const announce = v.page.getByTestId('fd-announce');

  await agent.send({ type: 'typing', conversation_id: id, active: true });
  await visible(v.typing);
  await expectText(v.typing, `${AGENT_NAME} is typing…`);
  await expectText(announce, `${AGENT_NAME} is typing…`);
  assert.equal(await v.typing.getAttribute('aria-hidden'), 'true', 'the dots are decoration; the status says it');
  await screenshot(v.page, 'widget-agent-typing');
  await agent.send({ type: 'typing', conversation_id: id, active: false });
  await hidden(v.typing);

  // The reply itself ends it, and shows where the dots were.
  await v.page.waitForTimeout(1100); // the server forwards at most 2 typing frames a second
  await agent.send({ type: 'typing', conversation_id: id, active: true });
  await visible(v.typing);
  const answer = `Yes, with the long rack. ${uniq()}`;
  await reply(agent, id, answer);
  await expectText(v.w.texts, answer);
  await hidden(v.typing);

  // A state nobody renews ends by itself, in the widget too (here the server says
  // nothing more: the frame comes from the tap).
  await v.inject({ type: 'typing', active: true, name: 'Ann' });
  await expectText(v.typing, 'Ann is typing…');
  const shown = Date.now();
  await hidden(v.typing, 12_000);
  assert.ok(Date.now() - shown >= 5_500, `the indicator lasted ${Date.now() - shown} ms, not about 6 s`);

  // Two agents at once, and one stopping.
  await v.inject({ type: 'typing', active: true, name: 'Ann' });
  await v.inject({ type: 'typing', active: true, name: 'Bo' });
  await expectText(v.typing, 'Ann and Bo are typing…');
  await v.inject({ type: 'typing', active: false, name: 'Ann' });
  await expectText(v.typing, 'Bo is typing…');
  await v.inject({ type: 'typing', active: false, name: 'Bo' });
  await hidden(v.typing);

  assert.deepEqual(v.dialogs, []);
  await agent.close();
  await v.context.close();
});

test("the visitor's typing reaches the agent: not before a conversation, renewed at most every 2 s, ended on send, clear and idle", async () => {
  const v = await visitor();
  await v.w.open();
  await v.w.input.pressSequentially('Hello, I');
  await v.page.waitForTimeout(500);
  assert.deepEqual(v.sentOf('typing'), [], 'no typing frame before the visitor has a conversation');
  await v.w.input.fill('');

  const agent = await agentSocket(browser, AGENT_TOKEN);
  const first = `Hello, I would like a test ride ${uniq()}`;
  await v.w.send(first);
  const id = (await agentSees(agent, first)).conversation_id;
  const typingFor = async () => {
    for (;;) {
      const f = await agent.next('visitor_typing');
      if (f.conversation_id === id) return f.active;
    }
  };

  await v.w.input.pressSequentially('On Saturday');
  assert.equal(await typingFor(), true, 'the agent hears the visitor typing');
  await v.w.input.fill('');
  assert.equal(await typingFor(), false, 'clearing the text stops it');

  // Typing on for a few seconds renews the state, at most once every 2 s.
  const from = v.sentOf('typing').length;
  const start = Date.now();
  while (Date.now() - start < 4_500) await v.w.input.pressSequentially('ab', { delay: 150 });
  const elapsed = Date.now() - start;
  const renewals = v.sentOf('typing').slice(from);
  assert.ok(renewals.every((f) => f.active === true), JSON.stringify(renewals));
  assert.ok(renewals.length >= 2, `renewed while typing: ${renewals.length}`);
  assert.ok(renewals.length <= Math.floor(elapsed / 2000) + 1, `${renewals.length} renewals in ${elapsed} ms`);

  // Sending ends it: active:false goes out before the message.
  await v.w.input.fill('Saturday at ten?');
  await v.w.input.press('Enter');
  await eventually(() => v.sent.some((f) => f.type === 'send' && f.text === 'Saturday at ten?'), 'the send');
  const i = v.sent.findIndex((f) => f.type === 'send' && f.text === 'Saturday at ten?');
  assert.deepEqual(v.sent.slice(0, i).filter((f) => f.type === 'typing').pop(), { type: 'typing', active: false });

  // Idle for a few seconds ends it too.
  const before = v.sent.length;
  await v.w.input.pressSequentially('and bring');
  await eventually(() => v.sent.slice(before).some((f) => f.type === 'typing' && !f.active), 'typing to end when idle', 10_000);

  await agent.close();
  await v.context.close();
});

test('"seen" is sent only while the chat is open and the page visible; a reply while closed lights the badge, the preview and the title', async () => {
  const { v, agent, id } = await conversation();
  const title = await v.page.title();
  const seenBefore = v.sentOf('seen').length;
  await v.close();

  const answer = `Hi! Two seats fit, with the long rack and a second saddle rail. ${uniq()} ${'x'.repeat(60)}`;
  const m = await reply(agent, id, answer);
  await expectText(v.badge, '1');
  await visible(v.preview);
  await expectText(v.preview, AGENT_NAME);
  const shown = await v.page.getByTestId('fd-preview-text').textContent();
  assert.ok(shown.endsWith('…') && [...shown].length === 80 && answer.startsWith(shown.slice(0, -1)), `preview: ${shown}`);
  assert.match(await v.w.launcher.getAttribute('aria-label'), /1 unread/);
  await expectText(v.page.getByTestId('fd-announce'), `New message from ${AGENT_NAME}`);
  // The title alternates with the alert, and comes back.
  await eventually(async () => (await v.page.title()) === `New message from ${AGENT_NAME}`, 'the title flash');
  await eventually(async () => (await v.page.title()) === title, 'the title between flashes');
  await screenshot(v.page, 'widget-reply-while-closed');
  assert.equal(v.sentOf('seen').length, seenBefore, 'nothing is seen while the chat is closed');

  // Opened while the page is hidden (say by the host page's script): still not seen.
  await v.setHidden(true);
  await v.page.evaluate(() => window.FrontdeskWidget.open());
  await visible(v.w.panel);
  await v.page.waitForTimeout(300);
  assert.equal(v.sentOf('seen').length, seenBefore, 'nothing is seen while the page is hidden');
  await hidden(v.preview);

  // Visible again: seen up to the reply, the badge goes, the title is the page's own.
  await v.setHidden(false);
  await eventually(() => v.sentOf('seen').length === seenBefore + 1, 'seen once visible');
  assert.deepEqual(v.sentOf('seen').pop(), { type: 'seen', seq: m.seq });
  await hidden(v.badge);
  await eventually(async () => (await v.page.title()) === title, 'the title restored');
  await v.page.waitForTimeout(1500);
  assert.equal(await v.page.title(), title, 'and it stays');

  // A reply while open and visible is seen at once, with no badge.
  const m2 = await reply(agent, id, `Anything else? ${uniq()}`);
  await eventually(() => v.sentOf('seen').some((f) => f.seq === m2.seq), 'seen of a reply while open');
  assert.equal(await v.badge.isVisible(), false);
  assert.equal(await v.preview.isVisible(), false);

  // Hidden while open: a reply flashes the title and counts, and is seen on return.
  await v.setHidden(true);
  const m3 = await reply(agent, id, `Still there? ${uniq()}`);
  await expectText(v.w.texts, 'Still there?');
  await eventually(async () => (await v.page.title()) === `New message from ${AGENT_NAME}`, 'the flash while hidden');
  assert.ok(!v.sentOf('seen').some((f) => f.seq === m3.seq), 'not seen while hidden');
  await v.setHidden(false);
  await eventually(() => v.sentOf('seen').some((f) => f.seq === m3.seq), 'seen on return');
  await hidden(v.badge);

  assert.deepEqual(v.dialogs, []);
  await agent.close();
  await v.context.close();
});

test('the preview bubble opens the chat when clicked and can be dismissed from the keyboard', async () => {
  const { v, agent, id } = await conversation();
  await v.close();
  await reply(agent, id, `First answer ${uniq()}`);
  await visible(v.preview);
  await v.page.getByTestId('fd-preview-open').click();
  await visible(v.w.panel);
  await hidden(v.preview);
  await hidden(v.badge);

  await v.close();
  assert.equal(await v.w.launcher.evaluate((el) => el.getRootNode().activeElement === el), true,
    'closing the chat gives focus back to the launcher');
  await reply(agent, id, `Second answer ${uniq()}`);
  await visible(v.preview);
  await v.page.getByTestId('fd-preview-dismiss').focus();
  await v.page.keyboard.press('Escape');
  await hidden(v.preview);
  await expectText(v.badge, '1'); // dismissing the preview does not read the message
  // Esc closes the open chat too.
  await v.w.launcher.click();
  await visible(v.w.panel);
  await v.page.keyboard.press('Escape');
  await hidden(v.w.panel);

  await agent.close();
  await v.context.close();
});

test('"Seen" appears on the visitor\'s messages up to the agent\'s mark_read, and is still there after a reload', async () => {
  const { v, agent, id, first } = await conversation();
  const second = await v.w.send(`And a rain cover? ${uniq()}`);
  const firstEl = v.mine.filter({ hasText: first.text });
  await expectText(firstEl, 'Sent');

  await agent.send({ type: 'mark_read', conversation_id: id, seq: first.seq });
  await expectText(firstEl, 'Seen');
  assert.match(await second.textContent(), /Sent/, 'a later message is not seen yet');
  await agent.send({ type: 'mark_read', conversation_id: id, seq: first.seq + 1 });
  await expectText(second, 'Seen');
  await screenshot(v.page, 'widget-seen');

  await v.page.reload();
  await v.w.open();
  await expectText(v.mine.filter({ hasText: first.text }), 'Seen');
  await expectText(v.mine.last(), 'Seen');
  assert.equal(await v.mine.filter({ hasText: 'Sent' }).count(), 0);

  await agent.close();
  await v.context.close();
});

test('the unread count survives a reload (from the server\'s seen cursor) and clears on open', async () => {
  const { v, agent, id } = await conversation();
  // Seen while open; then two more replies while closed.
  const m1 = await reply(agent, id, `One moment, checking the stock. ${uniq()}`);
  await eventually(() => v.sentOf('seen').some((f) => f.seq === m1.seq), 'the first reply seen');
  await v.close();
  await reply(agent, id, `We have it in green. ${uniq()}`);
  await reply(agent, id, `And in black. ${uniq()}`);
  await expectText(v.badge, '2');

  // A new page of the site: the same count, from the server's cursors (nothing is kept
  // in the page's storage but the dismissed preview).
  await v.page.evaluate(() => localStorage.clear());
  await v.page.reload();
  await visible(v.w.launcher);
  await expectText(v.badge, '2');
  await visible(v.preview);
  await expectText(v.preview, 'And in black.');
  assert.equal(await v.w.panel.isVisible(), false);
  await screenshot(v.page, 'widget-badge-after-reload');

  const seen = v.sentOf('seen').length;
  await v.w.open();
  await hidden(v.badge);
  await eventually(() => v.sentOf('seen').length > seen, 'seen on open');
  await v.close();
  await v.page.reload();
  await visible(v.w.launcher);
  await eventually(async () => (await v.w.status.getAttribute('data-state')) === 'online', 'welcomed');
  await v.page.waitForTimeout(500);
  assert.equal(await v.badge.isVisible(), false, 'no badge once seen');
  assert.equal(await v.preview.isVisible(), false, 'no preview once seen');

  await agent.close();
  await v.context.close();
});

test('a message the server refused says why in plain words, offers a Retry button, and keeps its place', async () => {
  const { v, agent, id } = await conversation();
  v.tap.failNext = 'rate_limited';
  const text = `Is there a discount for two? ${uniq()}`;
  await v.w.input.fill(text);
  await v.w.input.press('Enter');
  const failed = v.mine.filter({ hasText: text });
  await eventually(async () => (await failed.getAttribute('data-status')) === 'failed', 'the refusal');
  await expectText(failed, 'Too many messages at once');
  assert.ok(!(await failed.textContent()).includes('server text'), 'not the server\'s developer text');

  // A reply that comes after the failure shows below it, not above.
  const answer = `Ten percent for a second bike. ${uniq()}`;
  await reply(agent, id, answer);
  await expectText(v.w.texts, answer);
  let order = await v.w.texts.allTextContents();
  assert.ok(order.indexOf(text) < order.indexOf(answer), JSON.stringify(order));

  // Retry is a real button, reachable from the keyboard.
  const retry = failed.getByRole('button', { name: 'Retry' });
  await retry.focus();
  await v.page.keyboard.press('Enter');
  await eventually(async () => (await failed.getAttribute('data-status')) === 'sent', 'the retried message acked');
  order = await v.w.texts.allTextContents();
  assert.ok(order.indexOf(answer) < order.indexOf(text), `sent now, it is the newest: ${JSON.stringify(order)}`);

  await agent.close();
  await v.context.close();
});

test('on a phone the full-screen chat keeps Tab inside it, and Esc gives focus back to the launcher', async () => {
  const context = await browser.newContext({ viewport: { width: 390, height: 844 }, hasTouch: true });
  const page = await context.newPage();
  await page.goto(`${BASE}/`);
  const w = widget(page);
  await w.open();
  await w.input.fill('Hi');
  const inside = () => w.panel.evaluate((p) => p.contains(p.getRootNode().activeElement));
  for (let i = 0; i < 6; i++) {
    await page.keyboard.press(i % 2 ? 'Shift+Tab' : 'Tab');
    await page.keyboard.press('Tab');
    assert.ok(await inside(), `focus left the panel after ${i + 1} rounds`);
  }
  await page.keyboard.press('Escape');
  await hidden(w.panel);
  assert.ok(await w.launcher.evaluate((el) => el.getRootNode().activeElement === el), 'focus is on the launcher');
  await context.close();
});

test('a light brand colour gets dark text on it, a dark one white', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  const colours = {};
  for (const [colour, expected] of [['#facc15', 'rgb(31, 35, 48)'], ['#fde', 'rgb(31, 35, 48)'], ['#1e3a8a', 'rgb(255, 255, 255)']]) {
    await page.route(`${BASE}/brand`, (r) => r.fulfill({
      contentType: 'text/html',
      body: `<!doctype html><title>Brand</title><script src="/widget.js" data-color="${colour}"></script>`,
    }));
    await page.goto(`${BASE}/brand`);
    const w = widget(page);
    await visible(w.launcher);
    colours[colour] = await w.launcher.evaluate((el) => getComputedStyle(el).color);
    assert.equal(colours[colour], expected, `text on ${colour}`);
    await page.unroute(`${BASE}/brand`);
  }
  await context.close();
});

test('a message from another day shows its date, one from today only its time', async () => {
  const v = await visitor();
  await v.w.open();
  const today = await v.w.send(`Today's question ${uniq()}`);
  const at = Date.UTC(2026, 0, 15, 9, 5);
  v.inject({ type: 'message', message: { id: crypto.randomUUID(), conversation_id: null, seq: 1000,
    author: { kind: 'agent', name: 'Ann' }, text: 'An answer from January', at } });
  const old = v.page.locator('[data-testid=fd-message][data-author=agent]', { hasText: 'An answer from January' });
  await visible(old);
  const expected = await v.page.evaluate((at) => new Date(at).toLocaleDateString([], { month: 'short', day: 'numeric' }), at);
  assert.ok((await old.textContent()).includes(expected), `${await old.textContent()} has ${expected}`);
  assert.ok(!(await today.textContent()).includes(expected));
  assert.match(await today.textContent(), /\d:\d\d/);
  await v.context.close();
});

test('reading the chat in one tab clears the badge, the preview and the flash in the others', async () => {
  const { v, agent, id } = await conversation();
  await v.close();
  const other = await v.context.newPage(); // a second tab: same visitor, its own open state
  const w2 = widget(other);
  await other.goto(`${BASE}/`);
  await visible(w2.launcher);
  await eventually(async () => (await w2.status.getAttribute('data-state')) === 'online', 'the second tab connects');
  const title = await v.page.title();

  await reply(agent, id, `Your bike is ready for pickup. ${uniq()}`);
  await expectText(v.badge, '1');
  await visible(v.preview);
  await eventually(async () => (await v.page.title()) !== title, 'the flash in the first tab');
  const badge2 = other.getByTestId('fd-badge');
  await expectText(badge2, '1');

  await w2.open();
  await hidden(badge2);
  await hidden(v.badge);
  await hidden(v.preview);
  await eventually(async () => (await v.page.title()) === title, 'the first tab\'s title restored');

  await agent.close();
  await v.context.close();
});
