// The widget on a customer's site, another origin served by this test: under the strict
// Content-Security-Policy the README gives (no 'unsafe-inline'), styled and chatting with
// no violation; what was typed offline surviving a click to another page of the site and
// sent exactly once; its two languages; and the inbox's own title, colour and greeting.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  ADMIN_TOKEN, AGENT_TOKEN, STRICT_CSP, agentSocket, eventually, expectText, forbidDialogs, hidden, hostSite, launchQuiet,
  screenshot, shopPage, uniq, visible, widget,
} from './lib.mjs';

const strict = { 'content-security-policy': STRICT_CSP };
let browser;
let site;
const pages = {};
before(async () => {
  browser = await launchQuiet();
  site = await hostSite(Object.assign(pages, {
    '/': { body: shopPage('Teeladen', {}, '<a href="/tea">Our teas</a>'), headers: strict },
    '/tea': { body: shopPage('Our teas', {}, '<a href="/">Home</a>'), headers: strict },
    '/de': { body: shopPage('Teeladen (de)', { lang: 'de' }), headers: strict },
    '/yellow': { body: shopPage('Yellow', { color: '#facc15', title: 'Page title' }), headers: strict },
  }));
});
after(async () => {
  await browser?.close();
  await site?.close();
});

test('under a strict CSP (no unsafe-inline) the widget is fully styled and chats, with no violation', async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const fired = forbidDialogs(page);
  const res = await page.goto(site.url('/'));
  assert.equal(res.headers()['content-security-policy'], STRICT_CSP);
  assert.ok(!STRICT_CSP.includes('unsafe'), STRICT_CSP);
  const w = widget(page);
  await w.open();

  // Styled from widget.css: the host pinned to the corner, the launcher round and in
  // the default brand colour, the panel a fixed card.
  const host = await page.getByTestId('fd-host').evaluate((el) => {
    const c = getComputedStyle(el);
    return [c.position, c.zIndex];
  });
  assert.deepEqual(host, ['fixed', '2147483000']);
  const launcher = await w.launcher.evaluate((el) => {
    const c = getComputedStyle(el);
    return [c.position, c.backgroundColor, c.borderRadius, c.color];
  });
  assert.deepEqual(launcher, ['fixed', 'rgb(79, 70, 229)', '50%', 'rgb(255, 255, 255)']);
  const panel = await w.panel.evaluate((el) => {
    const c = getComputedStyle(el);
    return [c.position, c.width, c.display, c.borderTopLeftRadius];
  });
  assert.deepEqual(panel, ['fixed', '370px', 'flex', '16px']);
  await screenshot(page, 'widget-strict-csp');

  const agent = await agentSocket(browser, AGENT_TOKEN);
  const text = `Do you ship oolong to Vienna? ${uniq()}`;
  const mine = await w.send(text);
  assert.equal(await mine.evaluate((el) => getComputedStyle(el.querySelector('.b')).backgroundColor), 'rgb(79, 70, 229)');
  for (;;) {
    const f = await agent.next('message');
    if (f.message.text === text) break;
  }
  await agent.close();
  assert.deepEqual(fired, [], 'no CSP violation, dialog or page error');

  // The check itself works: an inline style on this page is reported.
  await page.evaluate(() => {
    const s = document.createElement('style');
    s.textContent = 'body{color:red}';
    document.head.appendChild(s);
  });
  await eventually(() => fired.some((f) => /Content Security Policy/.test(f)), 'the inline style to be reported');
  await context.close();
});

test('a message typed offline survives a click to another page and is sent there exactly once', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  const fired = forbidDialogs(page);
  // The widget's connections pass through here: "offline" closes them and refuses new
  // ones, as a dropped network or a stopped server would; `dropAcks` loses the acks on
  // the way (the server stored the message, the page never heard).
  const net = { online: true, dropAcks: false };
  const live = [];
  const sent = [];
  await page.routeWebSocket(/\/ws\/visitor/, (ws) => {
    if (!net.online) { ws.close({ code: 1001, reason: 'offline' }); return; }
    const server = ws.connectToServer();
    live.push({ ws, server });
    ws.onMessage((m) => { sent.push(JSON.parse(m)); server.send(m); });
    server.onMessage((m) => { if (!(net.dropAcks && JSON.parse(m).type === 'ack')) ws.send(m); });
  });
  const offline = async () => {
    net.online = false;
    for (const { ws, server } of live.splice(0)) { await server.close(); await ws.close(); }
  };
  const agent = await agentSocket(browser, AGENT_TOKEN);
  const w = widget(page);
  const mine = (text) => page.locator('[data-testid=fd-message][data-author=visitor]', { hasText: text });

  await page.goto(site.url('/'));
  await w.open();
  await w.send(`Hello from the shop ${uniq()}`);

  await offline();
  await expectText(w.status, 'Offline');
  const queued = `Please call me back on 555-0101 ${uniq()}`;
  await w.input.fill(queued);
  await w.input.press('Enter');
  assert.equal(await mine(queued).getAttribute('data-status'), 'pending');
  await expectText(mine(queued), 'Waiting for connection');
  const kept = await page.evaluate(() => JSON.parse(localStorage.getItem('fd_outbox:default')));
  assert.equal(kept.length, 1);
  assert.equal(kept[0].text, queued);
  assert.ok(kept[0].id && kept[0].at > 0, JSON.stringify(kept));

  // Another page of the site, still offline: the message is there, waiting.
  await page.getByRole('link', { name: 'Our teas' }).click();
  await page.waitForURL(site.url('/tea'));
  await visible(w.launcher);
  if (!(await w.panel.isVisible())) await w.launcher.click(); // it stays open across pages anyway
  await visible(w.panel);
  await expectText(mine(queued), 'Waiting for connection');
  assert.equal(await mine(queued).getAttribute('data-status'), 'pending');
  await screenshot(page, 'widget-queued-after-navigation');

  // Back online: sent once, acked, no longer kept.
  net.online = true;
  await page.evaluate(() => dispatchEvent(new Event('online')));
  await eventually(async () => (await mine(queued).getAttribute('data-status')) === 'sent', 'the queued message acked');
  await eventually(async () => (await page.evaluate(() => localStorage.getItem('fd_outbox:default'))) === null,
    'the outbox emptied');
  const sends = sent.filter((f) => f.type === 'send' && f.text === queued);
  assert.equal(sends.length, 1, JSON.stringify(sends));
  assert.equal(sends[0].client_msg_id, kept[0].id, 'the id it was given when typed');

  // The server stored it but the ack was lost, and the visitor left: the next page sends
  // it again with the same id, and the server keeps one.
  const lost = `And my order number is 4711 ${uniq()}`;
  net.dropAcks = true;
  await w.input.fill(lost);
  await w.input.press('Enter');
  await eventually(() => sent.some((f) => f.type === 'send' && f.text === lost), 'the send');
  await page.waitForTimeout(500);
  assert.equal(await mine(lost).getAttribute('data-status'), 'pending');
  net.dropAcks = false;
  await page.goto(site.url('/'));
  await w.open();
  await eventually(async () => (await mine(lost).getAttribute('data-status')) === 'sent', 'the resent message acked');
  const ids = sent.filter((f) => f.type === 'send' && f.text === lost).map((f) => f.client_msg_id);
  assert.equal(ids.length, 2);
  assert.equal(ids[0], ids[1], 'sent again under the same client_msg_id');
  assert.equal(await mine(lost).count(), 1, 'shown once');

  // The agent got each exactly once, and so does the history after a reload.
  await page.waitForTimeout(1000);
  const got = (await agent.frames()).filter((f) => f.type === 'message');
  assert.equal(got.filter((f) => f.message.text === queued).length, 1);
  assert.equal(got.filter((f) => f.message.text === lost).length, 1);
  await page.reload();
  await w.open();
  await expectText(w.texts, lost);
  const texts = await w.allTexts();
  assert.equal(texts.filter((t) => t === queued).length, 1);
  assert.equal(texts.filter((t) => t === lost).length, 1);
  assert.deepEqual(fired, []);
  await agent.close();
  await context.close();
});

test('the widget speaks German by data-lang or the browser, its own texts and dates too', async () => {
  const context = await browser.newContext({ locale: 'de-DE' });
  const page = await context.newPage();
  await page.goto(site.url('/')); // no data-lang: the browser's language
  const w = widget(page);
  await visible(w.launcher);
  assert.equal(await w.launcher.getAttribute('aria-label'), 'Chat öffnen');
  await w.open();
  await expectText(page.getByTestId('fd-empty'), 'Hallo');
  assert.equal(await w.input.getAttribute('placeholder'), 'Nachricht schreiben…');
  assert.equal(await page.getByTestId('fd-title').textContent(), 'Schreiben Sie uns');
  await expectText(w.status, 'Online');
  const mine = await w.send(`Haben Sie grünen Tee? ${uniq()}`);
  await expectText(mine, 'Gesendet');
  await expectText(page.getByTestId('fd-day'), 'Heute');
  assert.equal(await page.getByTestId('fd-close').getAttribute('aria-label'), 'Chat schließen');
  await context.close();

  // data-lang wins over an English browser.
  const en = await browser.newContext({ locale: 'en-US' });
  const p2 = await en.newPage();
  await p2.goto(site.url('/de'));
  await visible(widget(p2).launcher);
  assert.equal(await widget(p2).launcher.getAttribute('aria-label'), 'Chat öffnen');
  assert.equal(await p2.getByTestId('fd-host').evaluate((h) => h.shadowRoot.querySelector('.fd').lang), 'de');
  await en.close();
});

test('links in messages open safely in a new tab; other schemes stay text', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(site.url('/'));
  const w = widget(page);
  await w.open();
  const mine = await w.send(`See https://acme.example/invoices/1031, or (https://acme.example/a_(b)) and javascript:alert(1) ${uniq()}`);
  const links = mine.locator('a');
  assert.equal(await links.count(), 2);
  assert.equal(await links.nth(0).getAttribute('href'), 'https://acme.example/invoices/1031');
  assert.equal(await links.nth(0).textContent(), 'https://acme.example/invoices/1031');
  assert.equal(await links.nth(1).getAttribute('href'), 'https://acme.example/a_(b)');
  for (let i = 0; i < 2; i++) {
    assert.equal(await links.nth(i).getAttribute('target'), '_blank');
    assert.equal(await links.nth(i).getAttribute('rel'), 'noopener noreferrer');
  }
  assert.match(await mine.textContent(), /javascript:alert\(1\)/);
  await context.close();
});

test('a light brand colour gets dark text; dark mode darkens the panel', async () => {
  const context = await browser.newContext({ colorScheme: 'dark' });
  const page = await context.newPage();
  await page.goto(site.url('/yellow'));
  const w = widget(page);
  await w.open();
  assert.equal(await w.launcher.evaluate((el) => getComputedStyle(el).color), 'rgb(31, 35, 48)');
  assert.equal(await page.getByTestId('fd-title').textContent(), 'Page title');
  const bg = await w.panel.evaluate((el) => getComputedStyle(el).backgroundColor);
  assert.equal(bg, 'rgb(29, 31, 39)', 'the dark panel');
  await screenshot(page, 'widget-dark-yellow');
  await page.emulateMedia({ colorScheme: 'light' });
  assert.equal(await w.panel.evaluate((el) => getComputedStyle(el).backgroundColor), 'rgb(255, 255, 255)');
  await hidden(page.getByTestId('fd-badge'));
  await context.close();
});

test("the inbox's title, colour and greeting win over data-*, show from the start of the next page, and go when unset", async () => {
  let admin = await agentSocket(browser, ADMIN_TOKEN);
  const key = `brand-${uniq()}`;
  const change = async (frame) => {
    await admin.send(frame);
    const f = await admin.next('team', 'error');
    assert.equal(f.type, 'team', JSON.stringify(f));
  };
  await change({ type: 'create_inbox', key, name: 'Brand shop', origins: [site.origin] });
  await admin.close(); // a member of one more inbox: that connection is closed (4010)
  admin = await agentSocket(browser, ADMIN_TOKEN);
  const greeting = 'Guten Tag! Ask us about our first flush teas.';
  await change({ type: 'update_inbox', inbox: key, widget: { title: 'Talk to Tea', color: '#facc15', greeting } });
  pages['/brand'] = { body: shopPage('Brand', { inbox: key, title: 'Page title', color: '#1e3a8a' }), headers: strict };

  const context = await browser.newContext();
  const page = await context.newPage();
  const fired = forbidDialogs(page);
  const w = widget(page);
  const looks = async (p = page) => [
    await p.getByTestId('fd-title').textContent(),
    await p.getByTestId('fd-launcher').evaluate((el) => getComputedStyle(el).backgroundColor),
    await p.getByTestId('fd-launcher').evaluate((el) => getComputedStyle(el).color),
    await p.getByTestId('fd-empty').textContent(),
  ];
  const inboxLooks = ['Talk to Tea', 'rgb(250, 204, 21)', 'rgb(31, 35, 48)', greeting];
  await page.goto(site.url('/brand'));
  await w.open();
  assert.deepEqual(await looks(), inboxLooks);
  await screenshot(page, 'widget-inbox-settings');
  const cached = await page.evaluate((k) => JSON.parse(localStorage.getItem(`fd_widget:${k}`)), key);
  assert.deepEqual(cached, { title: 'Talk to Tea', color: '#facc15', greeting });

  // The next page view looks the same before it has even connected: no flash of the
  // page's own title and colour.
  const next = await context.newPage();
  await next.routeWebSocket(/\/ws\/visitor/, () => {}); // never answered
  await next.goto(site.url('/brand'));
  await visible(next.getByTestId('fd-launcher'));
  assert.equal(await next.getByTestId('fd-status').getAttribute('data-state'), 'connecting');
  assert.deepEqual(await looks(next), inboxLooks);
  await next.close();

  // The greeting is the empty chat's: not stored, gone once there is a message.
  await page.goto(site.url('/brand'));
  await w.open();
  await w.send(`Is the Darjeeling back? ${uniq()}`);
  await hidden(page.getByTestId('fd-empty'));
  assert.ok(!(await w.allTexts()).includes(greeting));

  // Unset: the page's data-* attributes decide again, and nothing is kept.
  await change({ type: 'update_inbox', inbox: key, widget: { title: null, color: null, greeting: null } });
  await page.goto(site.url('/brand'));
  await w.open();
  await eventually(async () => (await page.getByTestId('fd-title').textContent()) === 'Page title', 'the page title');
  assert.equal(await w.launcher.evaluate((el) => getComputedStyle(el).backgroundColor), 'rgb(30, 58, 138)');
  assert.equal(await page.evaluate((k) => localStorage.getItem(`fd_widget:${k}`), key), null);
  assert.deepEqual(fired, []);
  await admin.close();
  await context.close();
});
