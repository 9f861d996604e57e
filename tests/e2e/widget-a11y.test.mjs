// The widget for everyone: axe-core finds no serious or critical violation on it closed
// (with an unread reply's badge and preview) and open (a conversation with a link, a
// day separator, the composer), on a desktop and a phone viewport, in the light and the
// dark scheme; with forced colours the panel and the launcher keep a visible edge.
// The host page is a plain page of its own, so what axe finds is the widget's.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import {
  AGENT_TOKEN, agentSocket, expectText, hidden, hostSite, launchQuiet, screenshot, shopPage, uniq, visible, widget,
} from './lib.mjs';

const AXE = readFileSync(new URL('./node_modules/axe-core/axe.min.js', import.meta.url), 'utf8');

let browser;
let site;
before(async () => {
  browser = await launchQuiet();
  site = await hostSite({ '/': { body: shopPage('Teeladen') } });
});
after(async () => {
  await browser?.close();
  await site?.close();
});

/** axe-core over the whole page (the widget's open shadow root included), evaluated
 * so no script tag is added; fails on any serious or critical violation. */
async function axeClean(page, view) {
  if (!(await page.evaluate(() => typeof window.axe === 'object'))) await page.evaluate(AXE);
  // Colours are measured once the panel's or the preview's pop-in has finished.
  await page.evaluate(() => Promise.all(document.getElementById('frontdesk-widget').shadowRoot.getAnimations()
    .filter((a) => a.effect.getTiming().iterations !== Infinity).map((a) => a.finished)));
  const found = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({
      id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.slice(0, 5).map((n) => `${JSON.stringify(n.target)}: ${n.failureSummary}`),
    }));
  });
  const bad = found.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(bad, [], `${view}: axe violations\n${JSON.stringify(bad, null, 2)}`);
}

const VIEWPORTS = {
  desktop: { viewport: { width: 1280, height: 800 } },
  phone: { viewport: { width: 390, height: 844 }, hasTouch: true, isMobile: true, deviceScaleFactor: 2 },
};

for (const [device, options] of Object.entries(VIEWPORTS)) {
  for (const colorScheme of ['light', 'dark']) {
    test(`axe: the widget closed and open, ${device}, ${colorScheme}`, async () => {
      const context = await browser.newContext({ ...options, colorScheme });
      const page = await context.newPage();
      await page.goto(site.url('/'));
      const w = widget(page);
      await visible(w.launcher);
      await axeClean(page, `${device} ${colorScheme} closed`);

      await w.open();
      await axeClean(page, `${device} ${colorScheme} open, empty`);
      if (device === 'phone') { // no zoom on focus in iOS Safari; the whole dynamic viewport
        assert.equal(await w.input.evaluate((el) => getComputedStyle(el).fontSize), '16px');
        assert.equal(await w.panel.evaluate((el) => el.getBoundingClientRect().height), 844);
        assert.equal(await w.panel.getAttribute('aria-modal'), 'true');
      }
      const agent = await agentSocket(browser, AGENT_TOKEN);
      const text = `Where is my order? ${uniq()}`;
      await w.send(text);
      let id;
      for (;;) {
        const f = await agent.next('message');
        if (f.message.text === text) { id = f.message.conversation_id; break; }
      }
      await agent.send({ type: 'reply', conversation_id: id, client_msg_id: crypto.randomUUID(),
        text: 'It is on its way: https://acme.example/track/1031 (arrives tomorrow).' });
      await expectText(w.texts, 'It is on its way');
      await visible(page.getByTestId('fd-day'));
      await axeClean(page, `${device} ${colorScheme} open, a conversation`);
      await screenshot(page, `widget-a11y-${device}-${colorScheme}`);

      // Closed again, a reply comes: the badge and the preview.
      await page.keyboard.press('Escape');
      await hidden(w.panel);
      await agent.send({ type: 'reply', conversation_id: id, client_msg_id: crypto.randomUUID(), text: 'Anything else?' });
      await visible(page.getByTestId('fd-preview'));
      await visible(page.getByTestId('fd-badge'));
      await axeClean(page, `${device} ${colorScheme} closed, an unread reply`);
      await agent.close();
      await context.close();
    });
  }
}

test('with forced colours (Windows high contrast) the panel and the launcher keep an outline', async () => {
  const context = await browser.newContext({ forcedColors: 'active' });
  const page = await context.newPage();
  await page.goto(site.url('/'));
  const w = widget(page);
  await w.open();
  for (const el of [w.panel, w.launcher]) {
    const outline = await el.evaluate((e) => getComputedStyle(e).outlineStyle);
    assert.equal(outline, 'solid');
  }
  await screenshot(page, 'widget-forced-colors');
  await context.close();
});
