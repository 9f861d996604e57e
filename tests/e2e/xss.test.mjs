// Text from the network is text: markup typed by a visitor or an agent shows literally
// in both pages and never runs.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  AGENT_TOKEN, BASE, convItem, forbidDialogs, launchQuiet, signIn, uniq, visible, widget,
} from './lib.mjs';

let browser;
before(async () => {
  browser = await launchQuiet();
});
after(async () => { await browser?.close(); });

test('hostile message text shows as literal text in the widget and the inbox', async () => {
  const agentCtx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const agent = await agentCtx.newPage();
  const agentDialogs = forbidDialogs(agent);
  await signIn(agent, AGENT_TOKEN);

  const visitorCtx = await browser.newContext();
  const visitor = await visitorCtx.newPage();
  const visitorDialogs = forbidDialogs(visitor);
  await visitor.goto(`${BASE}/`);
  const w = widget(visitor);
  await w.open();

  const hostile = `<img src=x onerror=alert(1)> ${uniq()}`;
  await w.send(hostile);
  const bubble = visitor.locator('[data-testid=fd-message-text]', { hasText: hostile });
  assert.equal(await bubble.textContent(), hostile);
  assert.equal(await visitor.locator('[data-testid=fd-messages] img').count(), 0, 'no element was made from the text');

  const item = await convItem(agent, hostile);
  await visible(item);
  assert.equal(await item.getByTestId('conv-preview').textContent(), hostile);
  await item.click();
  const inThread = agent.locator('[data-testid=thread-message-text]', { hasText: hostile });
  await visible(inThread);
  assert.equal(await inThread.textContent(), hostile);
  assert.equal(await agent.locator('[data-testid=thread-messages] img, [data-testid=conv-list] img').count(), 0);

  const reply = `<script>alert(2)</script><b onmouseover=alert(3)>bold</b> ${uniq()}`;
  await agent.getByTestId('reply-input').fill(reply);
  await agent.getByTestId('reply-send').click();
  const theirs = visitor.locator('[data-testid=fd-message][data-author=agent] [data-testid=fd-message-text]', { hasText: reply });
  await visible(theirs);
  assert.equal(await theirs.textContent(), reply);
  assert.equal(await visitor.locator('[data-testid=fd-messages] b, [data-testid=fd-messages] script').count(), 0);
  await theirs.hover();

  // Give any injected handler a moment to fire before checking.
  await visitor.waitForTimeout(500);
  assert.deepEqual(visitorDialogs, []);
  assert.deepEqual(agentDialogs, []);
  await visitorCtx.close();
  await agentCtx.close();
});
