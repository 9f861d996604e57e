// The inbox page as a support team works in it all day (issue 18): filters and search,
// the list paged as it scrolls, status and assignee controls, unread counts from the
// server, the title count, desktop notifications asked for after a click, the sound
// toggle, typing both ways, "Seen", focus kept while the list updates, and the whole
// flow with two agents and a visitor in the widget.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  ADMIN_TOKEN, AGENT_TOKEN, BASE, agentSocket, convItem, eventually, expectText, forbidDialogs, hidden,
  launchQuiet, screenshot, signIn, uniq, visible, widget,
} from './lib.mjs';

let browser;
before(async () => {
  browser = await launchQuiet();
});
after(async () => { await browser?.close(); });

// ---- helpers ---------------------------------------------------------------------

/** Raw visitors over the real WebSocket, many in one page: the cookies are cleared
 * before each new one, so each is a new visitor with a conversation of its own. */
async function visitors() {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${BASE}/healthz`);
  const url = `${BASE.replace(/^http/, 'ws')}/ws/visitor`;
  return {
    /** A new visitor named `name` (for this helper) writes `text`; resolves to the ack'd message. */
    async start(name, text, keep = true) {
      await context.clearCookies();
      return page.evaluate(({ url, name, text, keep }) => new Promise((resolve, reject) => {
        window.__v = window.__v || {};
        const ws = new WebSocket(url);
        const v = { ws, frames: [] };
        if (keep) window.__v[name] = v;
        ws.onopen = () => ws.send(JSON.stringify({ type: 'hello' }));
        ws.onmessage = (e) => {
          const f = JSON.parse(e.data);
          v.frames.push(f);
          if (f.type === 'welcome') ws.send(JSON.stringify({ type: 'send', client_msg_id: crypto.randomUUID(), text }));
          if (f.type === 'ack') { resolve(f.message); if (!keep) ws.close(); }
          if (f.type === 'error') reject(new Error(JSON.stringify(f)));
        };
        ws.onclose = (e) => { if (keep) reject(new Error(`visitor socket closed: ${e.code}`)); };
      }), { url, name, text, keep });
    },
    /** The visitor `name` writes again; resolves to the ack'd message. */
    async say(name, text) {
      return page.evaluate(({ name, text }) => new Promise((resolve, reject) => {
        const v = window.__v[name];
        const id = crypto.randomUUID();
        const on = (e) => {
          const f = JSON.parse(e.data);
          if (f.type === 'ack' && f.client_msg_id === id) { v.ws.removeEventListener('message', on); resolve(f.message); }
          if (f.type === 'error') { v.ws.removeEventListener('message', on); reject(new Error(JSON.stringify(f))); }
        };
        v.ws.addEventListener('message', on);
        v.ws.send(JSON.stringify({ type: 'send', client_msg_id: id, text }));
      }), { name, text });
    },
    async send(name, frame) {
      await page.evaluate(({ name, frame }) => window.__v[name].ws.send(JSON.stringify(frame)), { name, frame });
    },
    /** Waits for a frame to visitor `name` of `type` for which `match` (a subset of its fields) holds. */
    async expect(name, type, match = {}) {
      await page.waitForFunction(({ name, type, match }) => window.__v[name].frames.some((f) => f.type === type &&
        Object.entries(match).every(([k, v]) => JSON.stringify(f[k]) === JSON.stringify(v))), { name, type, match }, { timeout: 15_000 });
    },
    async close() { await context.close(); },
  };
}

async function agentPage(token, options = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, ...options });
  const page = await context.newPage();
  const problems = forbidDialogs(page);
  await signIn(page, token);
  return { context, page, problems };
}

/** Makes the page believe its tab is in the background (hidden, without focus). */
async function hideTab(page) {
  await page.evaluate(() => {
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' });
    Object.defineProperty(document, 'hidden', { configurable: true, get: () => true });
    document.hasFocus = () => false;
    window.dispatchEvent(new Event('blur'));
    document.dispatchEvent(new Event('visibilitychange'));
  });
}
async function showTab(page) {
  await page.evaluate(() => {
    delete document.visibilityState;
    delete document.hidden;
    delete document.hasFocus;
    document.dispatchEvent(new Event('visibilitychange'));
    window.dispatchEvent(new Event('focus'));
  });
}

function rowOf(page, conversationId) {
  return page.locator(`[data-testid=conv-item][data-conversation-id="${conversationId}"]`);
}
async function rowIds(page) {
  return page.getByTestId('conv-item').evaluateAll((els) => els.map((e) => e.getAttribute('data-conversation-id')));
}
/** Searches, and waits until the list shows the answer to that search. */
async function search(page, text) {
  await page.getByTestId('search').fill(text);
  const list = page.getByTestId('conv-list');
  await eventually(async () => (await list.getAttribute('data-query')) === text.trim() &&
    (await list.getAttribute('aria-busy')) === 'false', `the search for ${JSON.stringify(text)}`);
}

// ---- tests ---------------------------------------------------------------------------

test('filters and search: a conversation moves between Open, Pending, Mine and Unassigned live', async () => {
  const tag = uniq();
  const vs = await visitors();
  const a = await vs.start('a', `Filter test ${tag}: my order never arrived`);
  const b = await vs.start('b', `Filter test ${tag}: wrong size delivered`);
  const { context, page, problems } = await agentPage(AGENT_TOKEN);
  const admin = await agentSocket(browser, ADMIN_TOKEN);

  // Open and All by default; both are listed, and a search narrows them to one.
  assert.equal(await page.getByTestId('filter-open').getAttribute('aria-pressed'), 'true');
  assert.equal(await page.getByTestId('filter-all').getAttribute('aria-pressed'), 'true');
  await visible(rowOf(page, a.conversation_id));
  await visible(rowOf(page, b.conversation_id));
  await search(page, `${tag}: wrong size`);
  await eventually(async () => JSON.stringify(await rowIds(page)) === JSON.stringify([b.conversation_id]), 'the search to show only b');
  await expectText(page.getByTestId('conv-count'), '1');
  await search(page, `nothing-matches-${tag}`);
  await eventually(async () => (await rowIds(page)).length === 0, 'an empty search');
  await expectText(page.getByTestId('conv-empty'), 'Nothing matches');
  await search(page, tag);
  await eventually(async () => (await rowIds(page)).length === 2, 'both again');

  // Set b to pending in the page: it leaves the Open list and is under Pending.
  await rowOf(page, b.conversation_id).click();
  await page.getByTestId('status-select').selectOption('pending');
  await hidden(rowOf(page, b.conversation_id));
  await page.getByTestId('filter-pending').click();
  await visible(rowOf(page, b.conversation_id));
  assert.equal(await rowOf(page, a.conversation_id).count(), 0, 'a is not pending');
  assert.equal(await page.getByTestId('status-select').inputValue(), 'pending');

  // Another agent reopens it: it moves back to Open while the agent looks at Pending.
  await admin.send({ type: 'set_status', conversation_id: b.conversation_id, status: 'open' });
  await hidden(rowOf(page, b.conversation_id));
  await eventually(async () => (await page.getByTestId('status-select').inputValue()) === 'open', 'the control to follow');
  await page.getByTestId('filter-open').click();

  // Mine / Unassigned follow "Assign to me" and another agent's unassign.
  await page.getByTestId('filter-mine').click();
  await eventually(async () => !(await rowIds(page)).includes(b.conversation_id), 'b not mine yet');
  await page.getByTestId('assign-me').click();
  await visible(rowOf(page, b.conversation_id));
  await expectText(rowOf(page, b.conversation_id).getByTestId('conv-assignee'), 'You');
  await page.getByTestId('filter-unassigned').click();
  await visible(rowOf(page, a.conversation_id));
  assert.equal(await rowOf(page, b.conversation_id).count(), 0, 'b is assigned');
  await admin.send({ type: 'assign', conversation_id: b.conversation_id, agent_id: null });
  await visible(rowOf(page, b.conversation_id));
  assert.equal(await page.getByTestId('assignee-select').inputValue(), '', 'the control shows Unassigned');
  await screenshot(page, 'inbox-filters');

  assert.deepEqual(problems, []);
  await admin.close();
  await context.close();
  await vs.close();
});

test('the status and assignee controls send the frames and show what others changed', async () => {
  const vs = await visitors();
  const m = await vs.start('v', `Controls ${uniq()}: can I change my delivery address?`);
  const { context, page, problems } = await agentPage(AGENT_TOKEN);
  const admin = await agentSocket(browser, ADMIN_TOKEN);
  const me = (await page.evaluate(() => document.getElementById('me-name').textContent));

  await rowOf(page, m.conversation_id).click();
  await expectText(page.getByTestId('thread-messages'), 'delivery address');
  // The controls are labelled and reachable from the keyboard.
  await page.getByLabel('Status', { exact: true }).focus();
  assert.equal(await page.evaluate(() => document.activeElement.id), 'status-select');
  await page.getByTestId('status-select').selectOption('resolved');
  const f = await admin.next('conversation_updated');
  assert.equal(f.conversation.status, 'resolved');
  await page.getByTestId('assign-me').click();
  const g = await admin.next('conversation_updated');
  assert.equal(g.conversation.assignee && g.conversation.assignee.name, me);
  await eventually(async () => !(await page.getByTestId('assign-me').isVisible()), '"Assign to me" to go once assigned to me');

  // Another agent's changes show in the controls.
  await admin.send({ type: 'set_status', conversation_id: m.conversation_id, status: 'pending' });
  await eventually(async () => (await page.getByTestId('status-select').inputValue()) === 'pending', 'pending shown');
  await admin.send({ type: 'assign', conversation_id: m.conversation_id, agent_id: null });
  await eventually(async () => (await page.getByTestId('assignee-select').inputValue()) === '', 'unassigned shown');
  await visible(page.getByTestId('assign-me'));
  assert.deepEqual(problems, []);
  await admin.close();
  await context.close();
  await vs.close();
});

test('unread counts come from the server: they survive a reload and clear when read', async () => {
  const vs = await visitors();
  const first = await vs.start('u', `Unread ${uniq()}: hello?`);
  const id = first.conversation_id;
  const { context, page } = await agentPage(AGENT_TOKEN);
  const row = rowOf(page, id);
  await visible(row);
  await vs.say('u', 'Is anyone there?');
  await vs.say('u', 'I need help with a return.');
  await eventually(async () => (await row.getAttribute('data-unread')) === '3', 'three unread');
  await expectText(row.getByTestId('conv-unread'), '3');

  await page.reload();
  await eventually(async () => (await page.getByTestId('conn-status').getAttribute('data-state')) === 'online', 'reconnect');
  await eventually(async () => (await row.getAttribute('data-unread')) === '3', 'three unread after a reload');

  // Opening it while the tab is looked at reads it; a reload keeps it read.
  await row.click();
  await expectText(page.getByTestId('thread-messages'), 'return');
  await eventually(async () => (await row.getAttribute('data-unread')) === '0', 'read once open');
  assert.equal(await row.getByTestId('conv-unread').isVisible(), false);
  // A new message in the open conversation while the tab is looked at is read at once.
  await vs.say('u', 'It is order 1031.');
  await expectText(page.getByTestId('thread-messages'), 'order 1031');
  await page.reload();
  await eventually(async () => (await page.getByTestId('conn-status').getAttribute('data-state')) === 'online', 'reconnect');
  await visible(row);
  await eventually(async () => (await row.getAttribute('data-unread')) === '0', 'still read after a reload');
  await context.close();
  await vs.close();
});

test('the title counts new visitor messages in a background tab; notifications only after a click; sound is a kept toggle', async () => {
  const { context, page, problems } = await (async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    await context.grantPermissions(['notifications'], { origin: BASE });
    // A fresh browser's Notification: "default" until asked, and every use recorded.
    await context.addInitScript(() => {
      const Real = window.Notification;
      let asked = false;
      window.__asked = 0;
      window.__notes = [];
      function Wrapped(title, options) {
        window.__notes.push({ title, body: options && options.body });
        return new Real(title, options);
      }
      Wrapped.requestPermission = (cb) => { window.__asked++; asked = true; return Real.requestPermission(cb); };
      Object.defineProperty(Wrapped, 'permission', { get: () => (asked ? Real.permission : 'default') });
      window.Notification = Wrapped;
      window.__tones = 0;
      const osc = AudioContext.prototype.createOscillator;
      AudioContext.prototype.createOscillator = function () { window.__tones++; return osc.call(this); };
    });
    const page = await context.newPage();
    const problems = forbidDialogs(page);
    await signIn(page, AGENT_TOKEN);
    return { context, page, problems };
  })();
  const vs = await visitors();
  const m = await vs.start('n', `Notify ${uniq()}: first message`);
  await visible(rowOf(page, m.conversation_id));
  const base = await page.title();
  assert.ok(!base.startsWith('('), base);

  // Never asked on load; the button asks.
  assert.equal(await page.evaluate(() => window.__asked), 0, 'no permission request on load');
  await expectText(page.getByTestId('notify-toggle'), 'Enable notifications');
  await page.getByTestId('notify-toggle').click();
  await eventually(async () => (await page.getByTestId('notify-toggle').getAttribute('data-state')) === 'on', 'notifications on');
  assert.equal(await page.evaluate(() => window.__asked), 1);

  // Sound: off by default, kept in localStorage across a reload.
  await expectText(page.getByTestId('sound-toggle'), 'Sound off');
  await page.getByTestId('sound-toggle').click();
  await expectText(page.getByTestId('sound-toggle'), 'Sound on');
  assert.equal(await page.getByTestId('sound-toggle').getAttribute('aria-pressed'), 'true');

  // A message while the tab is in the background: title count, a notification, a tone.
  await hideTab(page);
  const tones = await page.evaluate(() => window.__tones);
  await vs.say('n', 'Hello? Anyone?');
  await vs.say('n', 'Second one');
  await eventually(async () => (await page.title()) === `(2) ${base}`, async () => `the title count (title: ${await page.title()})`);
  await eventually(async () => (await page.evaluate(() => window.__notes.length)) === 2, 'two notifications');
  const notes = await page.evaluate(() => window.__notes);
  assert.equal(notes[0].body, 'Hello? Anyone?');
  assert.ok(await page.evaluate((t) => window.__tones > t, tones), 'a tone played');

  // Back to the tab: the count goes.
  await showTab(page);
  await eventually(async () => (await page.title()) === base, 'the title count cleared on focus');

  // While the agent looks at another conversation, a message in this one notifies, and
  // the title stays (the agent is looking).
  await vs.say('n', 'Third one');
  await eventually(async () => (await page.evaluate(() => window.__notes.length)) === 3, 'a notification for a conversation not open');
  assert.equal(await page.title(), base);
  // With it open and looked at: no notification.
  await rowOf(page, m.conversation_id).click();
  await expectText(page.getByTestId('thread-messages'), 'Third one');
  await vs.say('n', 'Fourth one');
  await expectText(page.getByTestId('thread-messages'), 'Fourth one');
  await page.waitForTimeout(300);
  assert.equal(await page.evaluate(() => window.__notes.length), 3, 'no notification for the conversation being read');

  await page.reload();
  await eventually(async () => (await page.getByTestId('conn-status').getAttribute('data-state')) === 'online', 'reconnect');
  await expectText(page.getByTestId('sound-toggle'), 'Sound on');
  assert.equal(await page.evaluate(() => window.__asked), 0, 'no permission request on reload either');
  assert.deepEqual(problems, []);
  await context.close();
  await vs.close();
});

test('typing both ways: the visitor and another agent see the agent type, the agent sees the visitor and the other agent', async () => {
  const vs = await visitors();
  const m = await vs.start('t', `Typing ${uniq()}: quick question`);
  const id = m.conversation_id;
  const { context, page, problems } = await agentPage(AGENT_TOKEN);
  const admin = await agentSocket(browser, ADMIN_TOKEN);
  await rowOf(page, id).click();
  await expectText(page.getByTestId('thread-messages'), 'quick question');

  // The agent types: the visitor gets `typing` with the agent's name, the other agent `agent_typing`.
  await page.getByTestId('reply-input').pressSequentially('Let me check', { delay: 20 });
  await vs.expect('t', 'typing', { active: true });
  let f = await admin.next('agent_typing');
  assert.equal(f.conversation_id, id);
  assert.equal(f.active, true);
  // Sending ends it.
  await page.getByTestId('reply-input').press('Enter');
  await vs.expect('t', 'typing', { active: false });
  f = await admin.next('agent_typing');
  assert.equal(f.active, false);

  // The visitor types: "Visitor is typing…", in a live region, gone 6 s after the last renewal.
  await vs.send('t', { type: 'typing', active: true });
  await expectText(page.getByTestId('typing'), 'Visitor is typing');
  assert.equal(await page.getByTestId('typing').getAttribute('aria-live'), 'polite');
  await expectText(rowOf(page, id).getByTestId('conv-preview'), 'Typing');
  await eventually(async () => (await page.getByTestId('typing').textContent()) === '', 'the visitor typing to expire', 12_000);

  // Another agent types: "Admin is typing…"; active:false ends it at once.
  await admin.send({ type: 'typing', conversation_id: id, active: true });
  await expectText(page.getByTestId('typing'), 'is typing');
  await admin.send({ type: 'typing', conversation_id: id, active: false });
  await eventually(async () => (await page.getByTestId('typing').textContent()) === '', 'the agent typing to end');
  assert.deepEqual(problems, []);
  await admin.close();
  await context.close();
  await vs.close();
});

test('"Seen" shows under the replies the visitor has seen', async () => {
  const vs = await visitors();
  const m = await vs.start('s', `Seen ${uniq()}: do you ship to Norway?`);
  const { context, page } = await agentPage(AGENT_TOKEN);
  await rowOf(page, m.conversation_id).click();
  await expectText(page.getByTestId('thread-messages'), 'Norway');
  const replies = page.locator('[data-testid=thread-message][data-author=agent]');
  for (const text of ['Yes, we do.', 'Shipping takes 3 days.']) {
    await page.getByTestId('reply-input').fill(text);
    await page.getByTestId('reply-input').press('Enter');
    await eventually(async () => (await replies.last().getAttribute('data-status')) === 'sent', 'the ack');
  }
  const seqs = await replies.evaluateAll((els) => els.map((e) => Number(e.getAttribute('data-seq'))));
  assert.equal(await replies.first().getAttribute('data-seen'), null);
  await vs.send('s', { type: 'seen', seq: seqs[0] });
  await eventually(async () => (await replies.first().getAttribute('data-seen')) === 'true', 'the first reply seen');
  await expectText(replies.first().getByTestId('thread-message-meta'), 'Seen');
  assert.equal(await replies.last().getAttribute('data-seen'), null, 'the second is not seen yet');
  await vs.send('s', { type: 'seen', seq: seqs[1] });
  await eventually(async () => (await replies.last().getAttribute('data-seen')) === 'true', 'both seen');
  // It comes from the server's cursor: still there after a reload.
  await page.reload();
  await eventually(async () => (await page.getByTestId('conn-status').getAttribute('data-state')) === 'online', 'reconnect');
  await rowOf(page, m.conversation_id).click();
  await eventually(async () => (await replies.last().getAttribute('data-seen')) === 'true', 'seen after a reload');
  await context.close();
  await vs.close();
});

test('the list is paged as the agent scrolls, and the count never claims a total it does not know', async () => {
  const tag = uniq();
  const vs = await visitors();
  const ids = [];
  for (let i = 0; i < 62; i++) ids.push((await vs.start(`p${i}`, `Paging ${tag} number ${i}`, false)).conversation_id);
  const { context, page, problems } = await agentPage(AGENT_TOKEN);
  const list = page.getByTestId('conv-list');

  // The search's first page is 50; scrolling loads the rest, each once.
  await search(page, `Paging ${tag}`);
  let previews = [];
  await eventually(async () => {
    previews = await page.getByTestId('conv-preview').allTextContents();
    return previews.length === 50 && previews.every((t) => t.includes(tag));
  }, () => `the search's first page (${previews.length} rows: ${previews.filter((t) => !t.includes(tag)).slice(0, 3)})`);
  await expectText(page.getByTestId('conv-count'), '50+');
  const focusRow = page.getByTestId('conv-item').nth(3).locator('button');
  await focusRow.focus();
  await list.evaluate((el) => { el.scrollTop = el.scrollHeight; });
  await eventually(async () => (await rowIds(page)).length === 62, 'all 62 after scrolling');
  const shown = await rowIds(page);
  assert.equal(new Set(shown).size, 62, 'no row twice');
  assert.deepEqual([...shown].sort(), [...ids].sort());
  assert.equal(shown[0], ids[61], 'newest first');
  assert.equal(shown[61], ids[0]);
  // Once the last page is in, the count is the plain number (the server may need one
  // more, empty page to say so).
  await eventually(async () => {
    await list.evaluate((el) => { el.scrollTop = el.scrollHeight; });
    return (await page.getByTestId('conv-count').textContent()) === '62';
  }, async () => `the count 62 (shown: ${await page.getByTestId('conv-count').textContent()})`);
  assert.equal(await page.evaluate(() => document.activeElement.closest('li')?.getAttribute('data-conversation-id')),
    shown[3], 'the focused row kept focus while the page was added');

  // Scrolled to the middle, a new conversation arriving on top does not move what the
  // agent is looking at.
  const where = () => list.evaluate((el) => {
    const top = el.getBoundingClientRect().top;
    const row = [...el.children].find((li) => li.getBoundingClientRect().bottom > top + 1);
    return { id: row.getAttribute('data-conversation-id'), y: Math.round(row.getBoundingClientRect().top) };
  });
  await list.evaluate((el) => { el.scrollTop = el.scrollHeight / 2; });
  const seen = await where();
  const newest = await vs.start('top', `Paging ${tag} a new one on top`, false);
  await eventually(async () => (await rowIds(page))[0] === newest.conversation_id, 'the new conversation on top');
  const now = await where();
  assert.equal(now.id, seen.id, 'the same row at the top of the view');
  assert.ok(Math.abs(now.y - seen.y) <= 2, `at the same place (${seen.y} -> ${now.y})`);

  // Without a search too: the whole inbox is more than a page; scrolling reaches the oldest.
  await search(page, '');
  await eventually(async () => (await page.getByTestId('conv-count').textContent()) === '50+', 'the first page of the inbox');
  await eventually(async () => {
    await list.evaluate((el) => { el.scrollTop = el.scrollHeight; });
    return (await rowIds(page)).includes(ids[0]);
  }, 'the oldest conversation after scrolling');
  await screenshot(page, 'inbox-paged');
  assert.deepEqual(problems, []);
  await context.close();
  await vs.close();
});

test('focus stays in the composer, the search box and a focused row while the list updates', async () => {
  const vs = await visitors();
  const m = await vs.start('f1', `Focus ${uniq()}: one`);
  await vs.start('f2', `Focus ${uniq()}: two`);
  const { context, page, problems } = await agentPage(AGENT_TOKEN);
  await rowOf(page, m.conversation_id).click();
  const input = page.getByTestId('reply-input');
  await input.pressSequentially('Half a sent', { delay: 10 });
  for (let i = 0; i < 3; i++) await vs.say('f2', `update ${i}`);
  await vs.start('f3', 'a new conversation arrives');
  await expectText(page.getByTestId('conv-preview'), 'a new conversation arrives');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'reply-input');
  assert.equal(await input.inputValue(), 'Half a sent');

  // A focused row keeps focus while others move above it.
  const row = rowOf(page, m.conversation_id);
  await row.locator('button').focus();
  await vs.say('f2', 'moves to the top');
  await expectText(page.getByTestId('conv-preview'), 'moves to the top');
  assert.equal(await page.evaluate(() => document.activeElement.closest('li')?.getAttribute('data-conversation-id')), m.conversation_id);
  // Arrow keys move between rows; Enter opens one.
  const focusedId = () => page.evaluate(() => document.activeElement.closest('li')?.getAttribute('data-conversation-id'));
  const ids = await rowIds(page);
  await page.keyboard.press('ArrowDown');
  assert.equal(await focusedId(), ids[ids.indexOf(m.conversation_id) + 1]);
  await page.keyboard.press('ArrowUp');
  assert.equal(await focusedId(), m.conversation_id);
  await page.keyboard.press('Enter');
  await eventually(async () => (await page.evaluate(() => document.activeElement.id)) === 'reply-input', 'Enter on a row opens it');

  // The search box keeps focus and its text as rows change.
  await page.getByTestId('search').focus();
  await page.keyboard.type('Foc');
  await vs.say('f2', 'while searching');
  await page.waitForTimeout(400);
  assert.equal(await page.evaluate(() => document.activeElement.id), 'search');
  assert.equal(await page.getByTestId('search').inputValue(), 'Foc');
  assert.deepEqual(problems, []);
  await context.close();
  await vs.close();
});

test('the whole flow: two agents and a visitor in the widget', async () => {
  const tag = uniq();
  const maja = await agentPage(AGENT_TOKEN);
  const admin = await agentPage(ADMIN_TOKEN);
  const majaName = await maja.page.evaluate(() => document.getElementById('me-name').textContent);
  const adminName = await admin.page.evaluate(() => document.getElementById('me-name').textContent);

  // The visitor writes from the demo page's widget.
  const vctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const vpage = await vctx.newPage();
  // What the widget's socket hears: its typing indicator is the widget's to show.
  const heard = [];
  vpage.on('websocket', (ws) => ws.on('framereceived', (e) => { try { heard.push(JSON.parse(e.payload)); } catch { /* binary */ } }));
  await vpage.goto(`${BASE}/`);
  const w = widget(vpage);
  await w.open();
  const first = `Whole flow ${tag}: my bike's brake squeaks`;
  await w.send(first);
  const majaRow = await convItem(maja.page, first);
  const id = await majaRow.getAttribute('data-conversation-id');
  const adminRow = rowOf(admin.page, id);
  await visible(adminRow);

  // Both agents open it. Maja types: the admin sees it (and the widget hears it).
  await majaRow.click();
  await adminRow.click();
  await maja.page.getByTestId('reply-input').pressSequentially('Which model', { delay: 20 });
  await expectText(admin.page.getByTestId('typing'), `${majaName} is typing`);
  await eventually(() => heard.some((f) => f.type === 'typing' && f.active && f.name === majaName), 'the visitor to hear Maja typing');
  // The admin types: Maja sees it.
  await admin.page.getByTestId('reply-input').pressSequentially('Hi', { delay: 20 });
  await expectText(maja.page.getByTestId('typing'), `${adminName} is typing`);
  await admin.page.getByTestId('reply-input').fill('');
  await eventually(async () => !(await maja.page.getByTestId('typing').textContent()).includes(adminName), 'typing ended by clearing the box');
  // The visitor types in the widget: both agents see it.
  await w.input.pressSequentially('Also', { delay: 20 });
  await expectText(maja.page.getByTestId('typing'), 'Visitor is typing');
  await expectText(admin.page.getByTestId('typing'), 'Visitor is typing');
  await w.input.fill('');

  // Maja assigns it to herself; the admin's controls and Mine/Unassigned follow.
  await maja.page.getByTestId('assign-me').click();
  await eventually(async () => (await admin.page.getByTestId('assignee-select').locator('option:checked').textContent()).includes(majaName), "the admin sees Maja's assignment");
  await admin.page.getByTestId('filter-unassigned').click();
  await hidden(adminRow);
  await admin.page.getByTestId('filter-all').click();
  await visible(adminRow);

  // Maja replies; the visitor sees it.
  await maja.page.getByTestId('reply-input').fill('Which model is it? Bring it by and we will adjust the pads.');
  await maja.page.getByTestId('reply-input').press('Enter');
  await expectText(w.texts, 'adjust the pads');
  // The widget is open and visible: the visitor has seen it, and Maja's page says so.
  const reply = maja.page.locator('[data-testid=thread-message][data-author=agent]', { hasText: 'adjust the pads' });
  await eventually(async () => (await reply.getAttribute('data-seen')) === 'true', 'Seen under the reply');

  // The admin reassigns it to... the admin (from the picker), then Maja resolves it.
  await admin.page.getByTestId('assignee-select').selectOption({ label: `${adminName} (you)` });
  await eventually(async () => (await maja.page.getByTestId('assignee-select').locator('option:checked').textContent()) === adminName, 'Maja sees the admin as assignee');
  await maja.page.getByTestId('status-select').selectOption('resolved');
  await hidden(majaRow);
  await hidden(adminRow);
  await eventually(async () => (await admin.page.getByTestId('status-select').inputValue()) === 'resolved', 'the admin sees it resolved');

  // The visitor writes again: it is reopened, leaving the Resolved list Maja watches
  // and coming back into both Open lists.
  await maja.page.getByTestId('filter-resolved').click();
  await visible(majaRow);
  await w.send(`Thanks! One more thing ${tag}: the bell is loose too.`);
  await hidden(majaRow);
  await maja.page.getByTestId('filter-open').click();
  await visible(majaRow);
  await visible(adminRow);
  await eventually(async () => (await admin.page.getByTestId('status-select').inputValue()) === 'open', 'reopened');
  // Maja has it open and is looking: it is read for her.
  await eventually(async () => (await majaRow.getAttribute('data-unread')) === '0', 'read by Maja, who has it open');

  // The admin reloads (nothing open any more); the next visitor message is unread for
  // the admin, still after another reload, and still read for Maja.
  await admin.page.reload();
  await eventually(async () => (await admin.page.getByTestId('conn-status').getAttribute('data-state')) === 'online', 'admin reconnect');
  await visible(adminRow);
  await w.send(`And the chain ${tag}`);
  await eventually(async () => Number(await adminRow.getAttribute('data-unread')) >= 1, 'unread for the admin');
  await admin.page.reload();
  await eventually(async () => (await admin.page.getByTestId('conn-status').getAttribute('data-state')) === 'online', 'admin reconnect');
  await eventually(async () => Number(await adminRow.getAttribute('data-unread')) >= 1, 'still unread after a reload');
  await expectText(maja.page.getByTestId('thread-messages'), 'And the chain');
  await eventually(async () => (await majaRow.getAttribute('data-unread')) === '0', 'still read for Maja');

  // Search finds it by a word of the visitor's second message.
  await admin.page.getByTestId('search').fill(`bell is loose too`);
  await eventually(async () => JSON.stringify(await rowIds(admin.page)) === JSON.stringify([id]), 'the search hit');
  await screenshot(admin.page, 'inbox-whole-flow');
  assert.deepEqual(maja.problems, []);
  assert.deepEqual(admin.problems, []);
  await vctx.close();
  await maja.context.close();
  await admin.context.close();
});
