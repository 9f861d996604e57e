/* frontdesk chat widget: <script src="https://HOST/widget.js" data-inbox="default" async></script>
 * (optional data-title, data-color="#hex"). No build step. It lives in an open shadow root,
 * and network text is inserted with textContent only. Wire contract: protocol.md v1.
 * Beside the chat: the agent's typing, "Seen" up to the agents' read cursor, and while the
 * panel is closed or the page hidden, an unread badge, a preview bubble and a title flash.
 * Unread is counted from the visitor's seen cursor, which the server keeps. */
(() => {
  'use strict';
  if (window.FrontdeskWidget) return;

  var script = document.currentScript || [].slice.call(document.querySelectorAll('script[src]')).reverse()
    .filter(s => /\/widget\.js([?#]|$)/.test(s.src))[0];
  if (!script) return;

  var data = script.dataset;
  var inbox = data.inbox || 'default';
  var wsUrl = new URL(script.src, location.href).origin.replace(/^http/, 'ws') +
    '/ws/visitor?inbox=' + encodeURIComponent(inbox);
  var COOKIE = 'fd_visitor_token';
  var openKey = 'fd_open:' + inbox, promptKey = 'fd_prompt:' + inbox, peekKey = 'fd_peek:' + inbox;
  var seenKey = 'fd_seen:' + inbox;

  var ws = null, welcomed = false, attempt = 0, retryTimer = null, stopped = false;
  var conversationId = null, email = null, historyBusy = false;
  var byId = {};   // message id -> its element in the log
  var outbox = []; // {id, text, el}: typed, not acked yet, in typing order
  var promptEl = null, isOpen = false, WAITING = 'Waiting for connection…';
  // Cursors: agents read up to readSeq (our messages up to it are Seen); the visitor has
  // seen up to seenSeq, and the server was told up to told (it sent it back in welcome).
  var readSeq = 0, seenSeq = 0, told = 0;
  var typers = {};            // agent name ('' if none) -> the timer that ends their typing
  var myTyping = 0, idle = null; // when we last sent typing active (0: not typing)
  var flashTimer = null, baseTitle = '', flashText = '';
  var ERRORS = {
    rate_limited: 'Too many messages at once, wait a moment',
    message_too_long: 'This message is too long',
    invalid_email: 'That email address does not look right.'
  };

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
  var host = h('div', { id: 'frontdesk-widget', t: 'host' });
  host.setAttribute('style', 'all:initial!important;position:fixed!important;right:0!important;bottom:0!important;' +
    'width:0!important;height:0!important;z-index:2147483000!important;display:block!important');
  var root = host.attachShadow({ mode: 'open' });
  var accent = /^#([0-9a-f]{3,4}|[0-9a-f]{6}|[0-9a-f]{8})$/i.test(data.color || '') ? data.color : '#4f46e5';
  // Text on the brand colour: white where it reads (4.5:1, WCAG AA), else dark.
  var rgb = (accent.length < 6 ? accent.replace(/\w/g, '$&$&') : accent).slice(1, 7);
  var lum = [0, 2, 4].map(i => parseInt(rgb.substr(i, 2), 16) / 255)
    .map(c => c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4));
  var onAccent = 1.05 / (0.2126 * lum[0] + 0.7152 * lum[1] + 0.0722 * lum[2] + 0.05) >= 4.5 ? '#fff' : '#1f2330';
  var style = h('style');
  style.textContent = `:host{all:initial}
*{box-sizing:border-box;margin:0;padding:0}
[hidden]{display:none!important}
.fd{--a:${accent};--on:${onAccent};font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:#1f2330}
button,input,textarea{font:inherit;color:inherit}
button{cursor:pointer;border:0}
button:disabled{opacity:.5;cursor:default}
svg{width:26px;height:26px;fill:currentColor}
.x svg{width:20px;height:20px}
.send svg{width:18px;height:18px}
button:focus-visible{outline:3px solid #1f2330;outline-offset:2px}
.head button:focus-visible{outline-color:var(--on)}
.launch{position:fixed;right:20px;bottom:20px;width:58px;height:58px;border-radius:50%;background:var(--a);color:var(--on);display:grid;place-items:center;box-shadow:0 6px 20px rgba(20,20,50,.28)}
.badge{position:absolute;top:-2px;right:-2px;min-width:20px;height:20px;padding:0 6px;border-radius:10px;background:#e11d48;color:#fff;font-size:12px;font-weight:700;line-height:16px;text-align:center;border:2px solid #fff}
.panel{position:fixed;right:20px;bottom:92px;width:370px;height:min(580px,calc(100vh - 120px));background:#fff;border-radius:16px;box-shadow:0 12px 48px rgba(20,20,50,.25);display:flex;flex-direction:column;overflow:hidden;transform-origin:bottom right;animation:pop .16s ease-out}
@keyframes pop{from{opacity:0;transform:scale(.96) translateY(8px)}}
.head{background:var(--a);color:var(--on);padding:16px 18px;display:flex;align-items:center;gap:12px}
.head div{flex:1;min-width:0}
.head b{display:block;font-size:16px;font-weight:650}
.head small{display:flex;align-items:center;gap:6px;font-size:12.5px;opacity:.92}
.head small::before{content:"";width:8px;height:8px;border-radius:50%;background:#4ade80}
.head small:not([data-state=online])::before{background:#fbbf24}
.x{background:none;color:var(--on);width:32px;height:32px;border-radius:8px;display:grid;place-items:center}
.x:hover{background:rgba(255,255,255,.16)}
.away{background:#fff7ed;color:#9a3412;border-bottom:1px solid #fed7aa;padding:9px 16px;font-size:13px;white-space:pre-wrap}
.log{flex:1;overflow-y:auto;padding:14px 14px 6px;background:#f7f7fb;display:flex;flex-direction:column;gap:8px}
.more{align-self:center;border:1px solid #d9d9e6;background:#fff;border-radius:14px;padding:3px 12px;font-size:12.5px;color:#4b5063}
.hello{align-self:center;text-align:center;color:#6b7080;font-size:13px;padding:18px 8px}
.m{max-width:82%;display:flex;flex-direction:column}
.b{padding:8px 12px;border-radius:14px;white-space:pre-wrap;overflow-wrap:anywhere}
.meta{font-size:11px;color:#5f6475;margin:2px 6px 0}
.visitor{align-self:flex-end;align-items:flex-end}
.visitor .b{background:var(--a);color:var(--on);border-bottom-right-radius:4px}
[data-status=pending] .b{opacity:.65}
[data-status=failed] .b{background:#fee2e2;color:#991b1b}
[data-status=failed] .meta{color:#b91c1c}
.retry{background:none;text-decoration:underline;font-weight:600;font-size:inherit}
.agent{align-self:flex-start}
.agent .b{background:#fff;border:1px solid #e7e7ef;border-bottom-left-radius:4px}
.who{font-size:11.5px;color:#6b7080;margin:0 6px 2px;font-weight:600}
.system{align-self:center;max-width:92%;text-align:center}
.system .b{background:#eef0f6;color:#414658;font-size:13px}
.card{background:#fff;border:1px solid #e3e4ee;border-radius:12px;padding:12px;display:flex;flex-direction:column;gap:8px}
.card p{font-size:13.5px;white-space:pre-wrap;overflow-wrap:anywhere}
.card form{display:flex;gap:6px}
.card input{flex:1;min-width:0;border:1px solid #cfd2de;border-radius:8px;padding:7px 10px;background:#fff}
input:focus,textarea:focus{outline:2px solid var(--a);outline-offset:-1px;border-color:transparent}
.card button{border-radius:8px;background:var(--a);color:var(--on);padding:0 14px;font-weight:600}
.err{color:#b91c1c;font-size:12.5px}
.ok{color:#166534;background:#f0fdf4;border-color:#bbf7d0}
.foot{display:flex;align-items:flex-end;gap:8px;padding:10px 12px;border-top:1px solid #ececf3}
.foot textarea{flex:1;resize:none;border:1px solid #d9dbe6;border-radius:12px;padding:8px 12px;max-height:110px;min-height:38px;background:#fff}
.send{width:38px;height:38px;border-radius:50%;background:var(--a);color:var(--on);display:grid;place-items:center;flex:none}
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip-path:inset(50%);white-space:nowrap}
.dots{display:flex;gap:4px;padding:12px 14px}
.dots i{width:7px;height:7px;border-radius:50%;background:#8a8fa0;animation:dot 1.2s infinite ease-in-out}
.dots i:nth-child(2){animation-delay:.15s}.dots i:nth-child(3){animation-delay:.3s}
@keyframes dot{30%{opacity:1;transform:translateY(-3px)}0%,60%,100%{opacity:.35}}
.peek{position:fixed;right:20px;bottom:90px;width:min(300px,calc(100vw - 40px));display:flex;align-items:flex-start;background:#fff;border-radius:14px;box-shadow:0 8px 28px rgba(20,20,50,.24);animation:pop .16s ease-out}
.peek .open{flex:1;min-width:0;text-align:left;background:none;padding:11px 4px 12px 14px;display:flex;flex-direction:column;gap:2px;border-radius:14px}
.peek b{font-size:12.5px;color:#4b5063}
.peek span{overflow-wrap:anywhere}
.peek .x{color:#4b5063;margin:4px}
.peek .x svg{width:16px;height:16px}
@media (prefers-reduced-motion:reduce){*{animation:none!important}}
@media (forced-colors:active){.launch,.panel,.peek{outline:1px solid CanvasText}}
@media (max-width:480px){.panel{right:0;bottom:0;width:100vw;height:100%;border-radius:0}.panel:not([hidden])+.launch{display:none}}`;

  var ICON_CHAT = 'M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H8l-5 4V5a2 2 0 0 1 2-2zm3 6v2h2V9zm4 0v2h2V9zm4 0v2h2V9z';
  var ICON_X = 'M6.4 5 12 10.6 17.6 5 19 6.4 13.4 12l5.6 5.6-1.4 1.4-5.6-5.6L6.4 19 5 17.6 10.6 12 5 6.4z';
  var iconChat = svg(ICON_CHAT), iconX = svg(ICON_X);
  var badge = h('span', { class: 'badge', t: 'badge', hidden: '' });
  var launcher = h('button', { class: 'launch', 'aria-label': 'Open chat', 'aria-expanded': 'false', t: 'launcher',
    on: { click: () => setOpen(!isOpen) } }, [iconChat, badge]);
  // The preview of a reply that came while the panel was closed: opens the chat, or goes.
  var peekWho = h('b'), peekText = h('span', { t: 'preview-text' });
  var peek = h('div', { class: 'peek', t: 'preview', hidden: '',
    on: { keydown: e => { if (e.key === 'Escape') dismissPeek(); } } }, [
    h('button', { class: 'open', t: 'preview-open', on: { click: () => setOpen(true) } }, [peekWho, peekText]),
    h('button', { class: 'x', 'aria-label': 'Dismiss', t: 'preview-dismiss', on: { click: dismissPeek } }, [svg(ICON_X)])
  ]);
  var sr = h('div', { class: 'sr', role: 'status', t: 'announce' }); // what a screen reader is told
  var typingWho = h('div', { class: 'who' });
  var typingRow = h('div', { class: 'm agent', t: 'typing', 'aria-hidden': 'true', hidden: '' },
    [typingWho, h('div', { class: 'b dots' }, [h('i'), h('i'), h('i')])]);
  var status = h('small', { t: 'status', 'aria-live': 'polite', 'data-state': 'connecting', text: 'Connecting…' });
  var away = h('div', { class: 'away', t: 'away', hidden: '' });
  var more = h('button', { class: 'more', t: 'load-earlier', hidden: '', text: 'Load earlier messages',
    on: { click: loadEarlier } });
  var hello = h('div', { class: 'hello', t: 'empty', text: 'Hi there 👋 Ask us anything, we usually reply in a few minutes.' });
  var log = h('div', { class: 'log', t: 'messages', role: 'log', 'aria-live': 'polite' }, [more, hello, typingRow]);
  var input = h('textarea', { rows: '1', placeholder: 'Write a message…', 'aria-label': 'Message', t: 'input', maxlength: '4000' });
  var sendBtn = h('button', { class: 'send', type: 'submit', 'aria-label': 'Send', t: 'send', disabled: '' },
    [svg('M3.4 20.4 21 12 3.4 3.6 3.4 10l12.6 2-12.6 2z')]);
  var panel = h('div', { class: 'panel', role: 'dialog', 'aria-label': 'Chat', t: 'panel', hidden: '',
    on: { keydown: onPanelKey } }, [
    h('div', { class: 'head' }, [
      h('div', null, [h('b', { text: data.title || 'Chat with us' }), status]),
      h('button', { class: 'x', 'aria-label': 'Close chat', t: 'close',
        on: { click: () => setOpen(false) } }, [svg(ICON_X)])
    ]),
    away, log,
    h('form', { class: 'foot', on: { submit: e => { e.preventDefault(); submitText(); } } }, [input, sendBtn])
  ]);
  root.appendChild(style);
  root.appendChild(h('div', { class: 'fd' }, [panel, launcher, peek, sr]));

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
    if (e.key !== 'Tab' || !matchMedia('(max-width:480px)').matches) return;
    var all = [].filter.call(panel.querySelectorAll('button,input,textarea'), el => !el.disabled && el.offsetParent);
    var edge = all[e.shiftKey ? 0 : all.length - 1];
    if (root.activeElement === edge) { e.preventDefault(); all[e.shiftKey ? all.length - 1 : 0].focus(); }
  }
  function setStatus(state, text) { status.dataset.state = state; status.textContent = text; }
  function nearBottom() { return log.scrollHeight - log.scrollTop - log.clientHeight < 80; }
  function scrollDown() { log.scrollTop = log.scrollHeight; }
  function meta(el, text) { el.lastChild.textContent = text; }

  // -- messages
  // Every entry in the log has a sort key: seq for stored messages, seq + .5 for the
  // prompt card, Infinity for messages not acked yet (they stay last, in order).
  function place(el, key) {
    el._key = key;
    el.remove();
    var next = [].filter.call(log.children, k => k._key > key)[0];
    log.insertBefore(el, next || null);
    log.appendChild(typingRow); // always last
    hello.hidden = true;
  }
  function seqs() { return Object.keys(byId).map((id) => byId[id]._key); }
  function maxSeq() { return Math.max.apply(null, [0].concat(seqs())); }
  function bubble(kind, text, name) {
    var el = h('div', { class: 'm ' + kind, t: 'message', 'data-author': kind });
    if (kind === 'agent') el.appendChild(h('div', { class: 'who', text: name || 'Support' }));
    el._name = name;
    el.appendChild(h('div', { class: 'b', t: 'message-text', text: text }));
    el.appendChild(h('div', { class: 'meta' }));
    return el;
  }
  function markSent(el, m) {
    el.dataset.id = m.id; el.dataset.seq = m.seq; el.dataset.status = 'sent';
    var at = new Date(m.at), day = at.toDateString() === new Date().toDateString() ? '' :
      at.toLocaleDateString([], { month: 'short', day: 'numeric' }) + ', '; // not today: the date too
    el._time = day + at.toLocaleTimeString([], { hour: 'numeric', minute: '2-digit' });
    stamp(el);
  }
  // Each of the visitor's messages says Seen once an agent has read up to it, else Sent.
  function stamp(el) {
    var mine = el.dataset.author === 'visitor', seen = mine && el._key <= readSeq;
    if (seen) el.dataset.seen = '';
    meta(el, el._time + (mine ? (seen ? ' · Seen' : ' · Sent') : ''));
  }
  function others(after) { // the agents' and system messages after a seq
    return Object.keys(byId).map(id => byId[id]).filter(el => el.dataset.author !== 'visitor' && el._key > after)
      .sort((a, b) => a._key - b._key);
  }
  function addMessage(m) { // true when it was not shown yet
    if (!m || !m.id || byId[m.id]) return false;
    conversationId = m.conversation_id || conversationId;
    var el = bubble(m.author.kind, m.text, m.author.name);
    markSent(el, m);
    byId[m.id] = el;
    place(el, m.seq);
    return true;
  }

  function submitText() {
    var text = input.value.trim();
    if (!text) return;
    input.value = ''; input.style.height = 'auto'; sendBtn.disabled = true;
    typing(false);
    var item = { id: uuid(), text: text, el: bubble('visitor', text) };
    item.el.dataset.status = 'pending';
    item.el.dataset.clientMsgId = item.id;
    place(item.el, Infinity);
    outbox.push(item);
    scrollDown();
    transmit(item);
  }
  function live() { return ws && welcomed && ws.readyState === 1; }
  function send(f) { ws.send(JSON.stringify(f)); }
  function transmit(item) {
    if (!live()) return meta(item.el, WAITING);
    meta(item.el, 'Sending…');
    send({ type: 'send', client_msg_id: item.id, text: item.text });
  }
  function takeOutbox(id) {
    var i = outbox.findIndex(o => o.id === id);
    return i < 0 ? null : outbox.splice(i, 1)[0];
  }
  function onAck(f) {
    var item = takeOutbox(f.client_msg_id), m = f.message;
    if (!item || byId[m.id]) { // another tab's, or already shown by a resume
      if (item) item.el.remove();
      return addMessage(m) && scrollDown();
    }
    markSent(item.el, m);
    byId[m.id] = item.el;
    conversationId = m.conversation_id || conversationId;
    place(item.el, m.seq);
    outbox.forEach(o => place(o.el, Infinity)); // keep typing order
    scrollDown();
  }
  function onSendError(item, f) {
    item.el.dataset.status = 'failed';
    place(item.el, maxSeq() + 0.25); // stays where it failed: later replies go below it
    meta(item.el, (ERRORS[f.code] || 'Not sent') + ' · ');
    item.el.lastChild.appendChild(h('button', { class: 'retry', type: 'button', t: 'retry', text: 'Retry',
      on: { click: () => {
        item.el.dataset.status = 'pending';
        place(item.el, Infinity);
        outbox.push(item);
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
    var names = Object.keys(typers).map(n => n || 'Support');
    var text = names.length ? names.join(' and ') + (names.length > 1 ? ' are' : ' is') + ' typing…' : '';
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
    launcher.setAttribute('aria-label', (isOpen ? 'Close chat' : 'Open chat') + (n ? ', ' + n + ' unread' : ''));
  }
  function author(m) { return m.author.name || (m.author.kind === 'agent' ? 'Support' : data.title || 'Chat'); }
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
    if (!isOpen) { showPeek(m); say('New message from ' + author(m) + ': ' + peekText.textContent); }
    flash('New message from ' + author(m));
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
    var field = h('input', { type: 'email', placeholder: 'you@example.com', 'aria-label': 'Your email',
      autocomplete: 'email', t: 'email-input' });
    var btn = h('button', { type: 'submit', t: 'email-submit', text: 'Send' });
    var form = h('form', { novalidate: '', on: { submit: e => {
      e.preventDefault();
      var v = field.value.trim();
      var problem = !v ? 'Please enter your email address.' : !live() ? 'Not connected, try again in a moment.' : '';
      err.textContent = problem; err.hidden = !problem;
      if (problem) return;
      btn.disabled = true;
      send({ type: 'submit_email', email: v });
    } } }, [field, btn]);
    promptEl = h('div', { class: 'card', t: 'email-prompt' }, [
      h('p', { t: 'email-prompt-text', text: text || 'Your email, so we can reply?' }), form, err]);
    promptEl._err = err; promptEl._btn = btn;
    place(promptEl, maxSeq() + 0.5);
    store('local', promptKey, JSON.stringify({ c: conversationId, t: text }));
    scrollDown();
  }
  function onEmailCaptured(f) {
    email = f.email;
    store('local', promptKey, null);
    var card = h('div', { class: 'card ok', t: 'email-captured' }, [h('p', { text: 'Thanks — we’ll reply to ' + f.email })]);
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
    setStatus('connecting', attempt ? 'Reconnecting…' : 'Connecting…');
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
      setStatus('offline', 'Offline, reconnecting…');
      outbox.forEach(o => meta(o.el, WAITING));
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
    outbox.forEach(o => meta(o.el, 'Not sent: chat is not available on this site'));
    setStatus('off', 'Chat is not available on this site');
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
        var item = f.ref && takeOutbox(f.ref);
        if (item) return onSendError(item, f);
        if (f.code === 'invalid_email' && promptEl && promptEl._err) {
          promptEl._err.textContent = ERRORS.invalid_email;
          promptEl._err.hidden = promptEl._btn.disabled = false;
          scrollDown();
        }
    }
  }

  function onWelcome(f) {
    if (conversationId && f.conversation_id && f.conversation_id !== conversationId) reset();
    var fresh = !seqs().length;
    welcomed = true; attempt = 0;
    if (f.visitor_token) saveToken(f.visitor_token);
    conversationId = f.conversation_id || conversationId;
    email = f.email || null;
    if (email && promptEl && promptEl._err) { promptEl.remove(); promptEl = null; }
    var a = f.away || {};
    away.hidden = !(a.active && a.message);
    away.textContent = a.message || '';
    setStatus(a.active ? 'away' : 'online', a.active ? 'We’re away right now' : 'We typically reply in a few minutes');
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
    outbox.forEach(transmit);
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
    if (store('session', openKey)) setOpen(true);
    connect();
  }
  if (document.body) mount(); else document.addEventListener('DOMContentLoaded', mount);

  window.FrontdeskWidget = {
    open: () => setOpen(true),
    close: () => setOpen(false)
  };
})();
