/* frontdesk chat widget: <script src="https://HOST/widget.js" data-inbox="default" async></script>
 * (optional data-title, data-color="#hex", data-lang="en"|"de"). No build step. It lives in
 * an open shadow root styled by widget.css from the chat origin (no inline style, so a
 * strict CSP works), and network text is inserted with textContent only. Wire contract:
 * protocol.md v1. Beside the chat: the agent's typing, "Seen" up to the agents' read
 * cursor, and while the panel is closed or the page hidden, an unread badge, a preview
 * bubble and a title flash. Unread is counted from the visitor's seen cursor, which the
 * server keeps. What was typed and not acked yet is kept in the host page's localStorage,
 * so it is sent (once: the same client_msg_id) after a reload or on the next page. */
(() => {
  'use strict';
  if (window.FrontdeskWidget) return;

  var script = document.currentScript || [].slice.call(document.querySelectorAll('script[src]')).reverse()
    .filter(s => /\/widget\.js([?#]|$)/.test(s.src))[0];
  if (!script) return;

  var data = script.dataset;
  var inbox = data.inbox || 'default';
  var origin = new URL(script.src, location.href).origin;
  var wsUrl = origin.replace(/^http/, 'ws') + '/ws/visitor?inbox=' + encodeURIComponent(inbox);
  // Versioned: a new widget.js never styles itself with a cached old sheet (the server
  // ignores the query; tests/it checks the version is the sheet's hash).
  var CSS = origin + '/widget.css?v=422582a6';
  var COOKIE = 'fd_visitor_token';
  var openKey = 'fd_open:' + inbox, promptKey = 'fd_prompt:' + inbox, peekKey = 'fd_peek:' + inbox;
  var seenKey = 'fd_seen:' + inbox, queueKey = 'fd_outbox:' + inbox, setKey = 'fd_widget:' + inbox;
  var PHONE = '(max-width:480px)', HEX = /^#([0-9a-f]{3,4}|[0-9a-f]{6}|[0-9a-f]{8})$/i, DAY = 864e5;

  // -- words: every text the widget shows itself. The inbox's own texts (prompt, away,
  // greeting) are shown as the admin typed them.
  var WORDS = {
    en: {
      open: 'Open chat', close: 'Close chat', unread: ', {} unread', dismiss: 'Dismiss', chat: 'Chat',
      title: 'Chat with us', hello: 'Hi there 👋 Ask us anything.', support: 'Support',
      connecting: 'Connecting…', reconnecting: 'Reconnecting…', offline: 'Offline, reconnecting…',
      online: 'Online', away: 'Away right now', off: 'Chat is not available on this site',
      more: 'Load earlier messages', message: 'Message', placeholder: 'Write a message…', send: 'Send',
      typing: '{} is typing…', typings: '{} are typing…', and: ' and ',
      waiting: 'Waiting for connection…', sending: 'Sending…', sent: 'Sent', seen: 'Seen', retry: 'Retry',
      notSent: 'Not sent', refused: 'Not sent: chat is not available on this site', newFrom: 'New message from {}',
      today: 'Today', yesterday: 'Yesterday', link: '{} (opens in a new tab)',
      emailAsk: 'Your email, so we can reply?', emailLabel: 'Your email', emailPh: 'you@example.com',
      emailEmpty: 'Please enter your email address.', noConn: 'Not connected, try again in a moment.',
      thanks: 'Thanks — we’ll reply to {}',
      rate_limited: 'Too many messages at once, wait a moment', message_too_long: 'This message is too long',
      empty_message: 'This message is empty', invalid_email: 'That email address does not look right.',
      internal: 'Something went wrong on our side, try again',
      back: 'We’re back {}', at: ' at ', soon: 'today', tmrw: 'tomorrow', on: 'on {}'
    },
    de: {
      open: 'Chat öffnen', close: 'Chat schließen', unread: ', {} ungelesen', dismiss: 'Ausblenden', chat: 'Chat',
      title: 'Schreiben Sie uns', hello: 'Hallo 👋 Fragen Sie uns gern.', support: 'Support',
      connecting: 'Verbinden…', reconnecting: 'Neu verbinden…', offline: 'Offline, neuer Versuch läuft…',
      online: 'Online', away: 'Gerade nicht erreichbar', off: 'Der Chat ist auf dieser Website nicht verfügbar',
      more: 'Frühere Nachrichten laden', message: 'Nachricht', placeholder: 'Nachricht schreiben…', send: 'Senden',
      typing: '{} schreibt…', typings: '{} schreiben…', and: ' und ',
      waiting: 'Warte auf Verbindung…', sending: 'Wird gesendet…', sent: 'Gesendet', seen: 'Gelesen',
      retry: 'Erneut senden', notSent: 'Nicht gesendet',
      refused: 'Nicht gesendet: Der Chat ist auf dieser Website nicht verfügbar', newFrom: 'Neue Nachricht von {}',
      today: 'Heute', yesterday: 'Gestern', link: '{} (öffnet in einem neuen Tab)',
      emailAsk: 'Ihre E-Mail-Adresse, damit wir antworten können?', emailLabel: 'Ihre E-Mail-Adresse',
      emailPh: 'sie@beispiel.de', emailEmpty: 'Bitte geben Sie Ihre E-Mail-Adresse ein.',
      noConn: 'Keine Verbindung, bitte gleich noch einmal versuchen.', thanks: 'Danke – wir antworten an {}',
      rate_limited: 'Zu viele Nachrichten auf einmal, bitte kurz warten', message_too_long: 'Diese Nachricht ist zu lang',
      empty_message: 'Diese Nachricht ist leer', invalid_email: 'Diese E-Mail-Adresse scheint nicht zu stimmen.',
      internal: 'Bei uns ist etwas schiefgegangen, bitte erneut versuchen',
      back: 'Wir sind {} wieder da', at: ' um ', soon: 'heute', tmrw: 'morgen', on: 'am {}'
    }
  };
  function pickLang(l) { l = String(l || '').toLowerCase(); return /^de(-|$)/.test(l) ? 'de' : /^en(-|$)/.test(l) ? 'en' : null; }
  var lang = pickLang(data.lang) || pickLang(navigator.language) || 'en';
  // Dates in the widget's language, in the browser's region when it speaks that language.
  var loc = pickLang(navigator.language) === lang ? navigator.language : lang;
  function t(k, arg) { var w = WORDS[lang][k]; return w === undefined ? k : w.replace('{}', arg); }

  var ws = null, welcomed = false, attempt = 0, retryTimer = null, stopped = false;
  var conversationId = null, email = null, historyBusy = false;
  var byId = {};   // message id -> its element in the log
  var outbox = []; // {id, text, at, el, failed}: typed, not acked yet, in typing order
  var promptEl = null, isOpen = false;
  // Cursors: agents read up to readSeq (our messages up to it are Seen); the visitor has
  // seen up to seenSeq, and the server was told up to told (it sent it back in welcome).
  var readSeq = 0, seenSeq = 0, told = 0;
  var typers = {};            // agent name ('' if none) -> the timer that ends their typing
  var myTyping = 0, idle = null; // when we last sent typing active (0: not typing)
  var flashTimer = null, baseTitle = '', flashText = '';

  // -- helpers
  function h(tag, attrs, kids) {
    var el = document.createElement(tag);
    for (var k in attrs || {}) {
      var v = attrs[k];
      if (k === 'text') el.textContent = v;
      else if (k === 't') el.setAttribute('data-testid', 'fd-' + v);
      else if (k === 'on') for (var ev in v) el.addEventListener(ev, v[ev]);
      else el.setAttribute(k, v);
    }
    (kids || []).forEach(c => c && el.appendChild(c));
    return el;
  }
  function svg(d) { // sized by CSS
    var NS = 'http://www.w3.org/2000/svg', s = document.createElementNS(NS, 'svg'), p = document.createElementNS(NS, 'path');
    s.setAttribute('viewBox', '0 0 24 24');
    p.setAttribute('d', d);
    s.appendChild(p);
    return s;
  }
  function uuid() {
    // randomUUID exists only in secure contexts; plain-http pages get this fallback.
    if (crypto.randomUUID) return crypto.randomUUID();
    var b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 15) | 64; b[8] = (b[8] & 63) | 128;
    var x = [].map.call(b, n => (n + 256).toString(16).slice(1)).join('');
    return [x.slice(0, 8), x.slice(8, 12), x.slice(12, 16), x.slice(16, 20), x.slice(20)].join('-');
  }
  function store(kind, k, v) { // v: undefined reads, null deletes
    try {
      var s = window[kind + 'Storage'];
      if (v === undefined) return s.getItem(k);
      if (v === null) s.removeItem(k); else s.setItem(k, v);
    } catch (e) { /* storage blocked */ }
    return null;
  }

  // The token lives in a first-party cookie of the host page (13 months, like the
  // server's own); where cookies are off, in localStorage.
  function readToken() {
    var m = document.cookie.match(/(?:^|;\s*)fd_visitor_token=([^;]*)/);
    if (m) { try { return decodeURIComponent(m[1]); } catch (e) { /* garbled: a new visitor */ } }
    return store('local', COOKIE);
  }
  function saveToken(t) {
    document.cookie = COOKIE + '=' + encodeURIComponent(t) + '; Max-Age=34128000; Path=/; SameSite=Lax' +
      (location.protocol === 'https:' ? '; Secure' : '');
    if (readToken() !== t) store('local', COOKIE, t);
  }

  // -- the UI
  // The host element is styled only by widget.css (:host, !important); the brand colour
  // goes in as a custom property through the CSSOM, which no CSP restricts.
  var host = h('div', { id: 'frontdesk-widget', t: 'host' });
  var root = host.attachShadow({ mode: 'open' });

  var ICON_CHAT = 'M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H8l-5 4V5a2 2 0 0 1 2-2zm3 6v2h2V9zm4 0v2h2V9zm4 0v2h2V9z';
  var ICON_X = 'M6.4 5 12 10.6 17.6 5 19 6.4 13.4 12l5.6 5.6-1.4 1.4-5.6-5.6L6.4 19 5 17.6 10.6 12 5 6.4z';
  var iconChat = svg(ICON_CHAT), iconX = svg(ICON_X);
  var badge = h('span', { class: 'badge', t: 'badge', hidden: '' });
  var launcher = h('button', { class: 'launch', 'aria-label': t('open'), 'aria-expanded': 'false', t: 'launcher',
    on: { click: () => setOpen(!isOpen) } }, [iconChat, badge]);
  // The preview of a reply that came while the panel was closed: opens the chat, or goes.
  var peekWho = h('b'), peekText = h('span', { t: 'preview-text' });
  var peek = h('div', { class: 'peek', t: 'preview', hidden: '',
    on: { keydown: e => { if (e.key === 'Escape') dismissPeek(); } } }, [
    h('button', { class: 'open', t: 'preview-open', on: { click: () => setOpen(true) } }, [peekWho, peekText]),
    h('button', { class: 'x', 'aria-label': t('dismiss'), t: 'preview-dismiss', on: { click: dismissPeek } }, [svg(ICON_X)])
  ]);
  var sr = h('div', { class: 'sr', role: 'status', t: 'announce' }); // what a screen reader is told
  var typingWho = h('div', { class: 'who' });
  var typingRow = h('div', { class: 'm agent', t: 'typing', 'aria-hidden': 'true', hidden: '' },
    [typingWho, h('div', { class: 'b dots' }, [h('i'), h('i'), h('i')])]);
  var status = h('small', { t: 'status', role: 'status', 'data-state': 'connecting', text: t('connecting') });
  var titleEl = h('b', { t: 'title' });
  var away = h('div', { class: 'away', t: 'away', hidden: '' });
  var awayText = h('span'), backEl = h('span', { class: 'back', t: 'back-at', hidden: '' });
  away.append(awayText, backEl);
  var more = h('button', { class: 'more', t: 'load-earlier', hidden: '', text: t('more'), on: { click: loadEarlier } });
  var hello = h('div', { class: 'hello', t: 'empty' });
  var log = h('div', { class: 'log', t: 'messages', role: 'log', 'aria-live': 'polite' }, [more, hello, typingRow]);
  var input = h('textarea', { rows: '1', placeholder: t('placeholder'), 'aria-label': t('message'), t: 'input', maxlength: '4000' });
  var sendBtn = h('button', { class: 'send', type: 'submit', 'aria-label': t('send'), t: 'send', disabled: '' },
    [svg('M3.4 20.4 21 12 3.4 3.6 3.4 10l12.6 2-12.6 2z')]);
  var panel = h('div', { class: 'panel', role: 'dialog', 'aria-label': t('chat'), t: 'panel', hidden: '',
    on: { keydown: onPanelKey } }, [
    h('div', { class: 'head' }, [
      h('div', null, [titleEl, status]),
      h('button', { class: 'x', 'aria-label': t('close'), t: 'close',
        on: { click: () => setOpen(false) } }, [svg(ICON_X)])
    ]),
    away, log,
    h('form', { class: 'foot', on: { submit: e => { e.preventDefault(); submitText(); } } }, [input, sendBtn])
  ]);
  // Shown once its stylesheet is in: never as bare controls in the page's flow.
  var fd = h('div', { class: 'fd', lang: lang, hidden: '' }, [panel, launcher, peek, sr]);
  root.appendChild(h('link', { rel: 'stylesheet', href: CSS, on: {
    load: () => { fd.hidden = false; },
    error: () => console.warn('frontdesk: the chat widget could not load its stylesheet ' + CSS +
      '; if this page has a Content-Security-Policy, its style-src must allow ' + origin + '.')
  } }));
  root.appendChild(fd);

  // The inbox's settings from the server (its title, colour and greeting) win over the
  // page's data-* attributes, which win over the defaults. The last ones seen are kept,
  // so the next page shows them from the start.
  var settings = {};
  try { settings = JSON.parse(store('local', setKey) || '{}') || {}; } catch (e) { /* ignore */ }
  function setting(k) { var v = settings[k]; return typeof v === 'string' && v ? v : null; }
  function applySettings() {
    titleEl.textContent = setting('title') || data.title || t('title');
    hello.textContent = setting('greeting') || t('hello');
    var accent = [setting('color'), data.color].filter(c => HEX.test(c || ''))[0] || '#4f46e5';
    fd.style.setProperty('--a', accent);
    fd.style.setProperty('--on', onColour(accent));
  }
  // Text on the brand colour: white or dark, whichever contrasts more (WCAG relative
  // luminance), so a yellow brand gets dark text.
  function onColour(c) {
    var rgb = (c.length < 6 ? c.replace(/\w/g, '$&$&') : c).slice(1, 7);
    var l = [0, 2, 4].map(i => parseInt(rgb.substr(i, 2), 16) / 255)
      .map(v => v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4));
    var lum = 0.2126 * l[0] + 0.7152 * l[1] + 0.0722 * l[2];
    return 1.05 / (lum + 0.05) >= (lum + 0.05) / 0.0668 ? '#fff' : '#1f2330'; // 0.0668: #1f2330's + .05
  }
  applySettings();

  input.addEventListener('input', () => {
    sendBtn.disabled = !input.value.trim();
    typing(!sendBtn.disabled);
    input.style.height = 'auto';
    input.style.height = Math.min(input.scrollHeight + 2, 110) + 'px';
  });
  input.addEventListener('keydown', e => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); submitText(); }
  });

  function setOpen(open) {
    var inside = panel.contains(root.activeElement);
    if (!open) typing(false);
    isOpen = open;
    panel.hidden = !open;
    panel.setAttribute('aria-modal', matchMedia(PHONE).matches); // full-screen there: the page is out of reach
    launcher.setAttribute('aria-expanded', open);
    launcher.replaceChild(open ? iconX : iconChat, launcher.firstChild);
    store('session', openKey, open ? '1' : null);
    if (open) {
      peek.hidden = true; scrollDown(); input.focus(); markSeen();
      if (!document.hidden) stopFlash();
    } else if (inside) launcher.focus(); // focus goes back where the chat came from
    renderBadge();
  }
  // Esc closes; on a phone the panel covers the page, so Tab stays inside it.
  function onPanelKey(e) {
    if (e.key === 'Escape') return setOpen(false);
    if (e.key !== 'Tab' || !matchMedia(PHONE).matches) return;
    var all = [].filter.call(panel.querySelectorAll('button,input,textarea,a[href]'), el => !el.disabled && el.offsetParent);
    var edge = all[e.shiftKey ? 0 : all.length - 1];
    if (root.activeElement === edge) { e.preventDefault(); all[e.shiftKey ? all.length - 1 : 0].focus(); }
  }
  function setStatus(state, text) { status.dataset.state = state; status.textContent = text; }
  function nearBottom() { return log.scrollHeight - log.scrollTop - log.clientHeight < 80; }
  function scrollDown() { log.scrollTop = log.scrollHeight; }
  function meta(el, text) { el.lastChild.textContent = text; }

  // -- messages
  // Every entry in the log has a sort key: seq for stored messages, seq + .5 for the
  // prompt card, Infinity for messages not acked yet (they stay last, in order). A day
  // separator goes before the first entry of each day.
  function place(el, key) {
    el._key = key;
    el.remove();
    var next = [].filter.call(log.children, k => k._key > key)[0];
    log.insertBefore(el, next || null);
    log.appendChild(typingRow); // always last
    hello.hidden = true;
    days();
  }
  function days() {
    var last = '';
    [].slice.call(log.children).forEach(el => {
      if (el.className === 'day') return el.remove();
      if (!el._at) return;
      var d = new Date(el._at).toDateString();
      if (d !== last) log.insertBefore(h('div', { class: 'day', t: 'day', text: dayName(el._at) }), el);
      last = d;
    });
  }
  function dayName(at) {
    var d = new Date(at), now = new Date(), y = new Date(now - DAY);
    if (d.toDateString() === now.toDateString()) return t('today');
    if (d.toDateString() === y.toDateString()) return t('yesterday');
    return d.toLocaleDateString(loc, { weekday: 'long', day: 'numeric', month: 'long',
      year: d.getFullYear() === now.getFullYear() ? undefined : 'numeric' });
  }
  function seqs() { return Object.keys(byId).map((id) => byId[id]._key); }
  function maxSeq() { return Math.max.apply(null, [0].concat(seqs())); }
  function bubble(kind, text, name, at) {
    var el = h('div', { class: 'm ' + kind, t: 'message', 'data-author': kind });
    if (kind === 'agent') el.appendChild(h('div', { class: 'who', text: name || t('support') }));
    el._name = name; el._at = at;
    el.appendChild(linked(h('div', { class: 'b', t: 'message-text' }), text));
    el.appendChild(h('div', { class: 'meta' }));
    return el;
  }
  // The text, with each http(s) URL in it a link that opens in a new tab without the
  // page's window or referrer. Built from text nodes: nothing is parsed as HTML.
  function linked(el, text) {
    var re = /\bhttps?:\/\/[^\s<>"]+/gi, at = 0, m;
    while ((m = re.exec(text))) {
      var url = m[0].replace(/[.,;:!?'*]+$/, ''); // a sentence's punctuation is not the link's
      if (/\)$/.test(url) && url.split('(').length < url.split(')').length) url = url.slice(0, -1);
      var href = null;
      try { href = new URL(url); } catch (e) { /* not a URL after all */ }
      if (!href || !/^https?:$/.test(href.protocol)) continue;
      el.appendChild(document.createTextNode(text.slice(at, m.index)));
      el.appendChild(h('a', { href: href.href, target: '_blank', rel: 'noopener noreferrer', text: url }));
      at = m.index + url.length;
      re.lastIndex = at;
    }
    el.appendChild(document.createTextNode(text.slice(at)));
    return el;
  }
  function markSent(el, m) {
    el.dataset.id = m.id; el.dataset.seq = m.seq; el.dataset.status = 'sent';
    var at = new Date(m.at), day = at.toDateString() === new Date().toDateString() ? '' :
      at.toLocaleDateString(loc, { month: 'short', day: 'numeric' }) + ', '; // not today: the date too
    el._at = m.at;
    el._time = day + at.toLocaleTimeString(loc, { hour: 'numeric', minute: '2-digit' });
    stamp(el);
  }
  // Each of the visitor's messages says Seen once an agent has read up to it, else Sent.
  function stamp(el) {
    var mine = el.dataset.author === 'visitor', seen = mine && el._key <= readSeq;
    if (seen) el.dataset.seen = '';
    meta(el, el._time + (mine ? ' · ' + t(seen ? 'seen' : 'sent') : ''));
  }
  function others(after) { // the agents' and system messages after a seq
    return Object.keys(byId).map(id => byId[id]).filter(el => el.dataset.author !== 'visitor' && el._key > after)
      .sort((a, b) => a._key - b._key);
  }
  function addMessage(m) { // true when it was not shown yet
    if (!m || !m.id || byId[m.id]) return false;
    conversationId = m.conversation_id || conversationId;
    var el = bubble(m.author.kind, m.text, m.author.name, m.at);
    markSent(el, m);
    byId[m.id] = el;
    place(el, m.seq);
    return true;
  }

  // -- the outbox: what was typed and not acked yet, also in localStorage (shared by the
  // site's tabs and pages: each change reads it again and adds or drops one entry).
  function stored() {
    var q = null;
    try { q = JSON.parse(store('local', queueKey) || '[]'); } catch (e) { /* garbled: none */ }
    return (Array.isArray(q) ? q : []).filter(o => o && typeof o.id === 'string' && typeof o.text === 'string' &&
      Date.now() - o.at < DAY); // a day later it is no longer what the visitor means to say
  }
  function keep(add, drop) {
    var q = stored().filter(o => o.id !== drop && (!add || o.id !== add.id));
    if (add) q.push({ id: add.id, text: add.text, at: add.at });
    store('local', queueKey, q.length ? JSON.stringify(q) : null);
  }
  function queue(id, text, at) {
    var item = { id: id, text: text, at: at, el: bubble('visitor', text, null, at) };
    item.el.dataset.status = 'pending';
    item.el.dataset.clientMsgId = id;
    place(item.el, Infinity);
    outbox.push(item);
    return item;
  }
  function submitText() {
    var text = input.value.trim();
    if (!text) return;
    input.value = ''; input.style.height = 'auto'; sendBtn.disabled = true;
    typing(false);
    var item = queue(uuid(), text, Date.now());
    keep(item);
    scrollDown();
    transmit(item);
  }
  function live() { return ws && welcomed && ws.readyState === 1; }
  function send(f) { ws.send(JSON.stringify(f)); }
  function transmit(item) {
    if (stopped) return meta(item.el, t('refused'));
    if (!live()) return meta(item.el, t('waiting'));
    meta(item.el, t('sending'));
    send({ type: 'send', client_msg_id: item.id, text: item.text });
  }
  function waiting() { return outbox.filter(o => !o.failed); }
  function find(id) { return outbox.filter(o => o.id === id)[0]; }
  function onAck(f) {
    var item = find(f.client_msg_id), m = f.message;
    if (item) { outbox.splice(outbox.indexOf(item), 1); keep(null, item.id); }
    if (!item || byId[m.id]) { // another tab's, or already shown by a resume
      if (item) { item.el.remove(); days(); }
      return addMessage(m) && scrollDown();
    }
    markSent(item.el, m);
    byId[m.id] = item.el;
    conversationId = m.conversation_id || conversationId;
    place(item.el, m.seq);
    waiting().forEach(o => place(o.el, Infinity)); // keep typing order
    scrollDown();
  }
  // Refused by the server: it says why in the visitor's words, with a Retry button. It
  // stays kept, so the next page tries it again.
  function onSendError(item, f) {
    item.failed = true;
    item.el.dataset.status = 'failed';
    place(item.el, maxSeq() + 0.25); // stays where it failed: later replies go below it
    meta(item.el, (WORDS[lang][f.code] || t('notSent')) + ' · ');
    item.el.lastChild.appendChild(h('button', { class: 'retry', type: 'button', t: 'retry', text: t('retry'),
      on: { click: () => {
        item.failed = false;
        item.el.dataset.status = 'pending';
        place(item.el, Infinity);
        transmit(item);
      } } }));
  }

  function loadEarlier() {
    var before = Math.min.apply(null, seqs());
    if (historyBusy || !isFinite(before) || !live()) return;
    historyBusy = more.disabled = true;
    send({ type: 'history', before: before, limit: 50 });
  }
  function onHistory(f) {
    historyBusy = more.disabled = false;
    var fromBottom = log.scrollHeight - log.scrollTop;
    (f.messages || []).forEach(addMessage);
    log.scrollTop = log.scrollHeight - fromBottom;
    more.hidden = !f.has_more;
  }

  // -- typing, both ways
  function typing(active) { // the visitor's own: renewed at most every 2 s, ended when idle
    clearTimeout(idle);
    if (!active) {
      if (myTyping && live()) send({ type: 'typing', active: false });
      myTyping = 0;
      return;
    }
    if (!conversationId || !live()) return;
    idle = setTimeout(() => typing(false), 4000);
    if (Date.now() - myTyping < 2000) return;
    myTyping = Date.now();
    send({ type: 'typing', active: true });
  }
  function untype(name) { // undefined: everybody
    for (var k in typers) if (name === undefined || k === name) { clearTimeout(typers[k]); delete typers[k]; }
    renderTyping();
  }
  function onTyping(f) {
    var k = f.name || '';
    if (!f.active) return untype(f.name ? k : undefined);
    clearTimeout(typers[k]);
    typers[k] = setTimeout(() => untype(k), 6000); // a state not renewed ends by itself
    renderTyping();
  }
  function renderTyping() {
    var names = Object.keys(typers).map(n => n || t('support'));
    var text = names.length ? t(names.length > 1 ? 'typings' : 'typing', names.join(t('and'))) : '';
    var stick = nearBottom();
    if (text && text !== typingWho.textContent && isOpen) say(text);
    typingWho.textContent = text;
    typingRow.hidden = !text;
    if (stick) scrollDown();
  }
  function say(text) { sr.textContent = text; }

  // -- seen and unread
  // While the chat is open and the page visible, everything shown is seen; the server
  // hears of it when that covers a message from someone else.
  function markSeen() {
    if (!isOpen || document.hidden) return;
    var news = others(told).length;
    if (maxSeq() > seenSeq && conversationId) store('local', seenKey, conversationId + ' ' + maxSeq()); // for other tabs
    seenSeq = Math.max(seenSeq, maxSeq());
    if (news && live() && conversationId) { told = seenSeq; send({ type: 'seen', seq: seenSeq }); }
    renderBadge();
  }
  function onSeen(seq) {
    readSeq = Math.max(readSeq, seq || 0);
    for (var id in byId) stamp(byId[id]);
  }
  function renderBadge() {
    var n = others(seenSeq).length;
    badge.hidden = !n;
    badge.textContent = n > 9 ? '9+' : n;
    launcher.setAttribute('aria-label', t(isOpen ? 'close' : 'open') + (n ? t('unread', n) : ''));
  }
  function author(m) { return m.author.name || (m.author.kind === 'agent' ? t('support') : titleEl.textContent); }
  function showPeek(m) {
    var t = Array.from(m.text.replace(/\s+/g, ' ').trim());
    peekWho.textContent = author(m);
    peekText.textContent = t.length > 80 ? t.slice(0, 79).join('') + '…' : t.join('');
    peek.hidden = false;
    peek._seq = m.seq;
  }
  function dismissPeek() {
    if (peek.contains(root.activeElement)) launcher.focus();
    peek.hidden = true;
    store('session', peekKey, String(peek._seq)); // not shown again for it after a reload
    stopFlash();
  }
  function flash(text) { // the title alternates with text until stopFlash
    flashText = text;
    if (flashTimer) return;
    baseTitle = document.title;
    document.title = text;
    flashTimer = setInterval(() => {
      var t = document.title;
      if (t !== flashText) baseTitle = t; // the page retitled itself meanwhile
      document.title = t === flashText ? baseTitle : flashText;
    }, 1200);
  }
  function stopFlash() {
    if (!flashTimer) return;
    clearInterval(flashTimer);
    flashTimer = null;
    if (document.title === flashText) document.title = baseTitle;
  }
  function onReply(m) { // an agent's or system message that arrived live
    if (m.author.kind === 'agent') untype(m.author.name || '');
    if (isOpen && !document.hidden) return markSeen();
    if (!isOpen) { showPeek(m); say(t('newFrom', author(m)) + ': ' + peekText.textContent); }
    flash(t('newFrom', author(m)));
    renderBadge();
  }
  document.addEventListener('visibilitychange', () => {
    if (document.hidden) return;
    markSeen();
    if (isOpen) stopFlash();
  });
  addEventListener('focus', stopFlash); // back on the page: the badge and the preview say it
  addEventListener('storage', e => { // the chat was read in another tab of this site
    var v = e.key === seenKey && (e.newValue || '').split(' ');
    if (!v || v[0] !== conversationId) return;
    seenSeq = Math.max(seenSeq, Number(v[1]) || 0);
    if (!others(seenSeq).length) { peek.hidden = true; stopFlash(); }
    renderBadge();
  });

  // -- the email prompt
  function showPrompt(text) {
    if (email || promptEl) return;
    var err = h('div', { class: 'err', t: 'email-error', role: 'alert', hidden: '' });
    var field = h('input', { type: 'email', placeholder: t('emailPh'), 'aria-label': t('emailLabel'),
      autocomplete: 'email', t: 'email-input' });
    var btn = h('button', { type: 'submit', t: 'email-submit', text: 'Send' });
    var form = h('form', { novalidate: '', on: { submit: e => {
      e.preventDefault();
      var v = field.value.trim();
      var problem = !v ? t('emailEmpty') : !live() ? t('noConn') : '';
      err.textContent = problem; err.hidden = !problem;
      if (problem) return;
      btn.disabled = true;
      send({ type: 'submit_email', email: v });
    } } }, [field, btn]);
    promptEl = h('div', { class: 'card', t: 'email-prompt' }, [
      h('p', { t: 'email-prompt-text', text: text || t('emailAsk') }), form, err]);
    promptEl._err = err; promptEl._btn = btn;
    place(promptEl, maxSeq() + 0.5);
    store('local', promptKey, JSON.stringify({ c: conversationId, t: text }));
    scrollDown();
  }
  function onEmailCaptured(f) {
    email = f.email;
    store('local', promptKey, null);
    var card = h('div', { class: 'card ok', t: 'email-captured' }, [h('p', { text: t('thanks', f.email) })]);
    place(card, promptEl ? promptEl._key : maxSeq() + 0.5);
    if (promptEl) promptEl.remove();
    promptEl = card;
    scrollDown();
  }

  // -- the connection
  function connect() {
    clearTimeout(retryTimer);
    if (stopped || (ws && ws.readyState < 2)) return;
    welcomed = false;
    setStatus('connecting', t(attempt ? 'reconnecting' : 'connecting'));
    var sock = ws = new WebSocket(wsUrl);
    sock.onopen = () => {
      var title = flashTimer ? baseTitle : document.title;
      var hi = { type: 'hello', visitor_token: readToken() || null, page: { url: location.href, title: title } };
      var held = maxSeq();
      if (held) hi.resume_after = held; // the welcome then carries only what we miss
      sock.send(JSON.stringify(hi));
    };
    sock.onmessage = e => {
      if (sock !== ws) return;
      try { handle(JSON.parse(e.data)); } catch (err) { /* not for us */ }
    };
    sock.onclose = e => {
      if (sock !== ws) return;
      welcomed = historyBusy = more.disabled = false;
      myTyping = 0;
      untype(); // the server ends every typing state with the connection
      if (e.code === 4003) return refused();
      setStatus('offline', t('offline'));
      waiting().forEach(transmit); // each says it is waiting
      // Exponential backoff with jitter, capped at 30 s.
      var delay = Math.min(30000, 500 * Math.pow(2, attempt++));
      retryTimer = setTimeout(connect, delay * (0.5 + Math.random() / 2));
    };
  }

  // The inbox does not allow this page's origin (close 4003): say so, tell the site's
  // owner why, and stop; nothing typed is kept waiting for a connection that won't come.
  function refused() {
    stopped = true;
    console.warn('frontdesk: the inbox "' + inbox + '" does not allow pages of ' + location.origin +
      '; add this origin to the inbox\'s allowed origins to turn the chat on here.');
    input.disabled = sendBtn.disabled = true;
    waiting().forEach(transmit); // each says it was not sent
    setStatus('off', t('off'));
  }

  function handle(f) {
    switch (f.type) {
      case 'welcome': return onWelcome(f);
      case 'ack': return onAck(f);
      case 'history': return onHistory(f);
      case 'email_prompt': return showPrompt(f.text);
      case 'email_captured': return onEmailCaptured(f);
      case 'typing': return onTyping(f);
      case 'seen': return onSeen(f.seq);
      case 'message':
        var stick = nearBottom(), m = f.message;
        if (!addMessage(m)) return;
        if (m.author.kind !== 'visitor') onReply(m);
        if (stick || m.author.kind === 'visitor') scrollDown();
        return;
      case 'error':
        var item = f.ref && find(f.ref);
        if (item) return onSendError(item, f);
        if (promptEl && promptEl._err && (promptEl._btn.disabled || f.code === 'invalid_email')) {
          promptEl._err.textContent = WORDS[lang][f.code] || t('notSent');
          promptEl._err.hidden = promptEl._btn.disabled = false;
          scrollDown();
        }
    }
  }

  // -- away, and when the inbox opens again: back_at (ms) said in the visitor's own zone
  var backTimer = null;
  function showAway(a) {
    clearTimeout(backTimer);
    var back = a.active && typeof a.back_at === 'number' ? a.back_at : 0, left = back - Date.now();
    if (back && left <= 0) a = {};
    awayText.textContent = a.message || '';
    backEl.hidden = !back;
    backEl.textContent = back ? t('back', backWhen(new Date(back))) : '';
    away.hidden = !(a.active && (a.message || back));
    setStatus(a.active ? 'away' : 'online', t(a.active ? 'away' : 'online'));
    // No frame says the inbox opened: from back_at on the widget shows it open.
    if (back && left > 0) backTimer = setTimeout(() => showAway(left > 2e9 ? a : {}), Math.min(left, 2e9));
  }
  function backWhen(d) {
    var loc = lang === pickLang(navigator.language) ? navigator.language : lang;
    var f = (o) => new Intl.DateTimeFormat(loc, o).format(d), now = new Date();
    var days = Math.round((new Date(d).setHours(0, 0, 0, 0) - now.setHours(0, 0, 0, 0)) / DAY);
    var day = days < 1 ? t('soon') : days < 2 ? t('tmrw') : days < 7 ? f({ weekday: 'long' })
      : t('on', f({ day: 'numeric', month: 'long' }));
    return day + t('at') + f({ hour: 'numeric', minute: '2-digit' });
  }

  function onWelcome(f) {
    if (conversationId && f.conversation_id && f.conversation_id !== conversationId) reset();
    var fresh = !seqs().length;
    welcomed = true; attempt = 0;
    if (f.visitor_token) saveToken(f.visitor_token);
    conversationId = f.conversation_id || conversationId;
    email = f.email || null;
    if (email && promptEl && promptEl._err) { promptEl.remove(); promptEl = null; }
    showAway(f.away || {});
    // The inbox's title, colour and greeting (absent: all its defaults), kept for the next page.
    settings = f.widget && typeof f.widget === 'object' ? f.widget : {};
    store('local', setKey, f.widget ? JSON.stringify(settings) : null);
    applySettings();
    var stick = nearBottom();
    (f.messages || []).forEach(addMessage);
    if (stick) scrollDown();
    if (fresh) more.hidden = !f.has_more;
    onSeen(f.read_seq);
    told = Math.max(told, f.seen_seq || 0);
    seenSeq = Math.max(seenSeq, told);
    markSeen();
    renderBadge();
    // Unread from before a reload: the preview comes back, unless it was dismissed.
    var last = others(seenSeq).pop();
    if (last && !isOpen && last.dataset.seq !== store('session', peekKey)) {
      showPeek({ text: last.querySelector('.b').textContent, seq: last.dataset.seq,
        author: { kind: last.dataset.author, name: last._name } });
    }
    // A prompt shown before a reload and not answered yet comes back.
    var p = null;
    try { p = JSON.parse(store('local', promptKey) || 'null'); } catch (e) { /* ignore */ }
    if (p && p.c && p.c === conversationId) showPrompt(p.t);
    // The server's word for it too: a push this page never got (say the server stopped
    // before writing it).
    if (f.email_prompt) showPrompt(f.email_prompt);
    waiting().forEach(transmit);
  }

  function reset() {
    for (var id in byId) byId[id].remove();
    byId = {};
    readSeq = seenSeq = told = 0;
    if (promptEl) promptEl.remove();
    promptEl = null;
    hello.hidden = false;
  }

  addEventListener('online', () => { if (!welcomed) { attempt = 0; connect(); } });

  function mount() {
    document.body.appendChild(host);
    stored().forEach(o => transmit(queue(o.id, o.text, o.at))); // from the last page: waiting
    keep();
    if (store('session', openKey)) setOpen(true);
    connect();
  }
  if (document.body) mount(); else document.addEventListener('DOMContentLoaded', mount);

  window.FrontdeskWidget = {
    open: () => setOpen(true),
    close: () => setOpen(false)
  };
})();
