// The agent's side: the inbox page live, replies reaching the visitor, the "Assign
// visitor" dialog both ways, and the page at desktop and phone widths.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  AGENT_TOKEN, BASE, convItem, eventually, expectText, forbidDialogs, launch, screenshot, setChatflow, signIn,
  visible, widget,
} from './lib.mjs';

let browser;
before(async () => {
  browser = await launch();
  // Visitors are asked for their email right away: the prompt sits in the widget while
  // the agent and the visitor chat, as it would in real life.
  await setChatflow(browser, {
    email_capture: { when: 'first_message', message: 'Leave your email and we will reply there too, in case you leave the page.' },
    away: { mode: 'off', message: null },
  });
});
after(async () => { await browser?.close(); });

async function newVisitor(text) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  await page.goto(`${BASE}/`);
  const w = widget(page);
  await w.open();
  await w.send(text);
  return { context, page, w };
}

test('an agent sees a visitor live, replies, and assigns visitors both ways', async () => {
  const agentCtx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const agent = await agentCtx.newPage();
  const dialogs = forbidDialogs(agent);
  await signIn(agent, AGENT_TOKEN);
  await agent.getByTestId('tab-settings').click();
  await visible(agent.getByTestId('lang-select'));
  for (const admin of ['chatflow-form', 'team-settings', 'inboxes-settings']) {
    assert.equal(await agent.getByTestId(admin).isVisible(), false, `no ${admin} for a non-admin`);
  }
  await agent.getByTestId('tab-inbox').click();

  // A visitor writes; the conversation appears at the top of the list, live.
  const hello = 'Hi! Is the Cargo Long in stock? I need it before the school year starts.';
  const v1 = await newVisitor(hello);
  const item = await convItem(agent, hello);
  await visible(item);
  assert.equal(await agent.getByTestId('conv-item').first().getAttribute('data-conversation-id'),
    await item.getAttribute('data-conversation-id'), 'newest first');
  await expectText(item.getByTestId('conv-label'), 'Unknown visitor');
  assert.equal(await item.getByTestId('online-dot').getAttribute('data-online'), 'true');

  // Open it and reply; the visitor sees the reply.
  await item.click();
  await expectText(agent.getByTestId('thread-messages'), hello);
  await expectText(agent.getByTestId('thread-label'), 'Unknown visitor');
  const answer = 'Yes, we have two in the workshop. Would you like to book a test ride?';
  await agent.getByTestId('reply-input').fill(answer);
  await agent.getByTestId('reply-send').click();
  const sent = agent.locator('[data-testid=thread-message][data-author=agent]', { hasText: answer });
  await eventually(async () => (await sent.getAttribute('data-status')) === 'sent', 'the reply ack');
  await expectText(v1.page.locator('[data-testid=fd-message][data-author=agent]'), answer);

  // A visitor message while the conversation is open shows up live.
  const more = 'Great, Saturday morning works for me.';
  await v1.w.send(more);
  await expectText(agent.getByTestId('thread-messages'), more);
  await visible(v1.w.prompt);
  await screenshot(v1.page, 'widget-conversation');

  // With the chat closed, a reply lights the launcher's badge; opening clears it.
  await v1.page.getByTestId('fd-close').click();
  await agent.getByTestId('reply-input').fill('See you on Saturday!');
  await agent.getByTestId('reply-input').press('Enter');
  const badge = v1.page.getByTestId('fd-badge');
  await visible(badge);
  await expectText(badge, '1');
  await v1.w.open();
  await expectText(v1.w.texts, 'See you on Saturday!');
  assert.equal(await badge.isVisible(), false);

  // Assign, case 1: no contact has the email yet, so the agent creates one.
  const email = 'grace.hopper@example.com'; // a fresh server each run, as cargo test starts
  await agent.getByTestId('assign-open').click();
  const dialog = agent.getByTestId('assign-dialog');
  await visible(dialog);
  await agent.getByTestId('assign-email').fill(email);
  await agent.getByTestId('assign-lookup').click();
  await visible(agent.getByTestId('assign-new'));
  await agent.getByTestId('assign-first').fill('Grace');
  await agent.getByTestId('assign-last').fill('Hopper');
  await agent.getByTestId('assign-create').click();
  await eventually(async () => !(await dialog.isVisible()), 'the dialog to close');
  await expectText(item.getByTestId('conv-label'), 'Grace Hopper');
  await expectText(agent.getByTestId('thread-label'), 'Grace Hopper');
  await expectText(agent.getByTestId('details-contact-email'), email);
  await screenshot(agent, 'inbox-1280x800');

  // The visitor is never shown what the agent set.
  assert.ok(!(await v1.page.getByTestId('fd-messages').textContent()).includes('Hopper'));

  // Assign, case 2: a second visitor, the same email in other case: "Yes, assign".
  const hello2 = 'Hello again, writing from my phone this time.';
  const v2 = await newVisitor(hello2);
  const item2 = await convItem(agent, hello2);
  await visible(item2);
  await expectText(item2.getByTestId('conv-label'), 'Unknown visitor');
  await item2.click();
  await agent.getByTestId('assign-open').click();
  await agent.getByTestId('assign-email').fill(email.toUpperCase());
  await agent.getByTestId('assign-lookup').click();
  await visible(agent.getByTestId('assign-found'));
  await expectText(agent.getByTestId('assign-found-name'), 'Grace Hopper');
  await expectText(agent.getByTestId('assign-found-email'), email);
  await agent.getByTestId('assign-confirm').click();
  await eventually(async () => !(await dialog.isVisible()), 'the dialog to close');
  await expectText(item2.getByTestId('conv-label'), 'Grace Hopper');
  assert.ok(!(await v2.page.getByTestId('fd-messages').textContent()).includes(hello),
    "linking never shows a visitor another visitor's conversation");

  // Errors come back into the dialog: an address that is not one.
  await agent.getByTestId('assign-open').click();
  await agent.getByTestId('assign-email').fill('not an email');
  await agent.getByTestId('assign-lookup').click();
  await eventually(async () => (await agent.getByTestId('assign-error').isVisible()) ||
    (await agent.getByTestId('assign-new').isVisible()), 'an answer to the lookup');
  if (await agent.getByTestId('assign-new').isVisible()) {
    await agent.getByTestId('assign-first').fill('No');
    await agent.getByTestId('assign-last').fill('Body');
    await agent.getByTestId('assign-create').click();
  }
  await visible(agent.getByTestId('assign-error'));
  assert.ok((await agent.getByTestId('assign-error').textContent()).length > 0);
  await agent.getByTestId('assign-cancel').click();

  // The visitor leaves: the online dot goes out.
  await v2.context.close();
  await eventually(async () => (await item2.getByTestId('online-dot').getAttribute('data-online')) === 'false', 'the visitor to show offline');

  assert.deepEqual(dialogs, []);
  await v1.context.close();
  await agentCtx.close();
});

test('the inbox is usable at 390 px wide: one column at a time', async () => {
  const v = await newVisitor('Which frame size fits someone 1.65 m tall?');
  const ctx = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  const agent = await ctx.newPage();
  await signIn(agent, AGENT_TOKEN);
  const list = agent.getByTestId('conv-list');
  await visible(list);
  assert.equal(await agent.getByTestId('reply-input').isVisible(), false, 'the thread is hidden while the list shows');
  const noOverflow = () => agent.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);
  assert.ok(await noOverflow(), 'no horizontal scrolling');
  await screenshot(agent, 'inbox-390-list');

  await agent.getByTestId('conv-item').first().click();
  await visible(agent.getByTestId('reply-input'));
  assert.equal(await list.isVisible(), false, 'the list hides while a conversation is open');
  const answer = 'The 50 cm frame. Come by and try it, we are open until 18:00.';
  await agent.getByTestId('reply-input').fill(answer);
  await agent.getByTestId('reply-send').click();
  await expectText(agent.getByTestId('thread-messages'), answer);
  assert.ok(await noOverflow(), 'no horizontal scrolling');
  await screenshot(agent, 'inbox-390-thread');

  await agent.getByTestId('details-toggle').click();
  await visible(agent.getByTestId('assign-open'));
  await screenshot(agent, 'inbox-390-details');
  await agent.locator('#details-close').click();
  await agent.getByTestId('thread-back').click();
  await visible(list);
  await ctx.close();
  await v.context.close();
});

test('a reply written while the inbox is offline is sent once it reconnects, exactly once', async () => {
  const v = await newVisitor('Can I leave my bike for a service on Monday?');
  const ctx = await browser.newContext();
  const agent = await ctx.newPage();
  let online = true;
  const live = [];
  await agent.routeWebSocket(/\/ws\/agent/, (ws) => {
    if (!online) { ws.close({ code: 1001, reason: 'offline' }); return; }
    live.push({ ws, server: ws.connectToServer() });
  });
  await signIn(agent, AGENT_TOKEN);
  await (await convItem(agent, 'Can I leave my bike for a service on Monday?')).click();
  await expectText(agent.getByTestId('thread-messages'), 'service on Monday');

  online = false;
  await ctx.setOffline(true);
  for (const { ws, server } of live.splice(0)) { await server.close(); await ws.close(); }
  await eventually(async () => (await agent.getByTestId('conn-status').getAttribute('data-state')) === 'offline', 'the inbox to notice');
  const answer = 'Sure, drop it off any time after 10:00.';
  await agent.getByTestId('reply-input').fill(answer);
  await agent.getByTestId('reply-input').press('Enter');
  const mine = agent.locator('[data-testid=thread-message][data-author=agent]', { hasText: answer });
  assert.equal(await mine.getAttribute('data-status'), 'pending');

  online = true;
  await ctx.setOffline(false);
  await eventually(async () => (await mine.getAttribute('data-status')) === 'sent', 'the reply to be acked after reconnecting');
  await expectText(v.page.locator('[data-testid=fd-message][data-author=agent]'), answer);
  await agent.waitForTimeout(500);
  const seen = (await v.w.allTexts()).filter((t) => t === answer);
  assert.equal(seen.length, 1, 'the visitor gets the reply once');
  const shown = (await agent.getByTestId('thread-message-text').allTextContents()).filter((t) => t === answer);
  assert.equal(shown.length, 1, 'the agent sees it once');
  await ctx.close();
  await v.context.close();
});

test('a wrong token is refused and the sign-in form says so', async () => {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await page.goto(`${BASE}/inbox`);
  await page.getByTestId('signin-token').fill('definitely-not-a-token');
  await page.getByTestId('signin-submit').click();
  await visible(page.getByTestId('signin-error'));
  await expectText(page.getByTestId('signin-error'), 'not accepted');
  // A good token signs in and is kept for the tab: a reload stays signed in.
  await page.getByTestId('signin-token').fill(AGENT_TOKEN);
  await page.getByTestId('signin-submit').click();
  await visible(page.getByTestId('conv-list'));
  await page.reload();
  await eventually(async () => (await page.getByTestId('conn-status').getAttribute('data-state')) === 'online', 'a reconnect after reload');
  assert.equal(await page.getByTestId('signin').isVisible(), false);
  await ctx.close();
});
