// Sign-in that lasts (issue 19): a token is traded once for an HttpOnly session cookie;
// a new tab is signed in by it; nothing of the token stays in the page's storage;
// signing out revokes the session on the server (its other tabs are signed out at once,
// and the old cookie no longer works anywhere); an invite link signs in and leaves the URL.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { AGENT_TOKEN, BASE, agentSocket, ADMIN_TOKEN, eventually, expectText, forbidDialogs, launchQuiet, signIn, uniq, visible } from './lib.mjs';

let browser;
before(async () => { browser = await launchQuiet(); });
after(async () => { await browser?.close(); });

const online = async (page) => (await page.getByTestId('conn-status').getAttribute('data-state')) === 'online'
  && !(await page.getByTestId('signin').isVisible());

/** Everything the page keeps in its storage, as one string. */
const storage = (page) => page.evaluate(() => JSON.stringify([{ ...localStorage }, { ...sessionStorage }]));

test('a token signs the browser in for good: a new tab and a reload are signed in by the cookie', async () => {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  const problems = forbidDialogs(page);
  await signIn(page, AGENT_TOKEN);
  const cookie = (await ctx.cookies()).find((c) => c.name === 'fd_session');
  assert.ok(cookie, 'the session cookie is set');
  assert.equal(cookie.httpOnly, true);
  assert.equal(cookie.sameSite, 'Strict');
  assert.ok(cookie.expires > Date.now() / 1000 + 29 * 86400, 'it lasts 30 days');
  assert.ok(!(await storage(page)).includes(AGENT_TOKEN), 'no token in localStorage or sessionStorage');
  assert.ok(!cookie.value.includes(AGENT_TOKEN), 'the cookie is not the token');

  // A new tab in the same browser: no sign-in form, straight to the inbox.
  const tab = await ctx.newPage();
  await tab.goto(`${BASE}/inbox`);
  await eventually(() => online(tab), 'the new tab to be signed in by the cookie');
  await expectText(tab.getByTestId('agent-name'), 'Maja Berg');
  // And a reload.
  await page.reload();
  await eventually(() => online(page), 'a reload to stay signed in');
  assert.deepEqual(problems, []);
  await ctx.close();
});

test('signing out revokes the session: other tabs are signed out and the old cookie is dead', async () => {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await signIn(page, AGENT_TOKEN);
  const tab = await ctx.newPage();
  await tab.goto(`${BASE}/inbox`);
  await eventually(() => online(tab), 'the second tab');
  const cookie = (await ctx.cookies()).find((c) => c.name === 'fd_session');

  await page.getByTestId('signout').click();
  await visible(page.getByTestId('signin-form'));
  // The other tab's connection is closed by the server: it shows the form and says why.
  await visible(tab.getByTestId('signin-form'));
  await expectText(tab.getByTestId('signin-error'), 'signed out');
  assert.ok(!(await ctx.cookies()).some((c) => c.name === 'fd_session' && c.value), 'the cookie is cleared');
  const fresh = await ctx.newPage();
  await fresh.goto(`${BASE}/inbox`);
  await visible(fresh.getByTestId('signin-form'));

  // Someone who kept a copy of the cookie gets nowhere.
  const thief = await browser.newContext();
  await thief.addCookies([{ ...cookie }]);
  const tp = await thief.newPage();
  await tp.goto(`${BASE}/inbox`);
  await visible(tp.getByTestId('signin-form'));
  assert.equal(await tp.getByTestId('app').isVisible(), false);
  await thief.close();
  await ctx.close();
});

test('an invite link signs in, and the token leaves the URL before anything else', async () => {
  const admin = await agentSocket(browser, ADMIN_TOKEN);
  const name = `Invitee ${uniq()}`;
  await admin.send({ type: 'create_agent', name, display_name: null, role: 'agent', inboxes: ['default'] });
  const created = await admin.next('agent_created', 'error');
  assert.equal(created.type, 'agent_created', JSON.stringify(created));
  await admin.close();
  assert.match(created.invite, /^\/inbox#invite=/);
  const token = decodeURIComponent(created.invite.split('#invite=')[1]);

  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  const problems = forbidDialogs(page);
  const requests = [];
  page.on('request', (r) => requests.push(r.url()));
  await page.goto(`${BASE}${created.invite}`);
  await eventually(() => online(page), 'the invite to sign in');
  await expectText(page.getByTestId('agent-name'), name);
  assert.equal(page.url(), `${BASE}/inbox`, 'no token in the URL');
  assert.ok(!(await page.evaluate(() => location.href)).includes(token));
  assert.ok(!(await storage(page)).includes(token), 'nor in storage');
  assert.ok(!requests.some((u) => u.includes(token)), 'nor in any request URL');
  // Reloading (the URL has no invite any more) stays signed in by the cookie.
  await page.reload();
  await eventually(() => online(page), 'signed in after a reload');
  assert.deepEqual(problems, []);
  await ctx.close();

  // A broken invite link says so.
  const bad = await browser.newContext();
  const bp = await bad.newPage();
  await bp.goto(`${BASE}/inbox#invite=fda_not-a-real-invite`);
  await visible(bp.getByTestId('signin-form'));
  await expectText(bp.getByTestId('signin-error'), 'invite link is not valid');
  assert.equal(bp.url(), `${BASE}/inbox`);
  await bad.close();
});
