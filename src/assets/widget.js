/* frontdesk chat widget. One tag on any site:
 *   <script src="https://HOST/widget.js" data-inbox="default" async></script>
 * Optional: data-title="…", data-subtitle="…", data-color="#hex".
 * Plain JavaScript, no build step. Everything lives in an open shadow root so no CSS
 * crosses in either direction, and every text that came over the network is inserted
 * with textContent, never as HTML. Wire contract: protocol.md, version 1. */
(function () {
  'use strict';
  if (window.FrontdeskWidget) return;

  var script = document.currentScript || (function () {
    var all = document.querySelectorAll('script[src]');
    for (var i = all.length - 1; i >= 0; i--) {
      if (/\/widget\.js(\?|#|$)/.test(all[i].src)) return all[i];
    }
    return null;
  })();
  if (!script) return;

  var origin = new URL(script.src, location.href).origin;
  var data = script.dataset;
  var inbox = data.inbox || 'default';
  var wsUrl = origin.replace(/^http/, 'ws') + '/ws/visitor?inbox=' + encodeURIComponent(inbox);
  var COOKIE = 'fd_visitor_token';
  var MAX_AGE = 34128000; // 13 months, as the server's own cookie
  var openKey = 'fd_open:' + inbox;
  var promptKey = 'fd_prompt:' + inbox;

  // ---- state ----------------------------------------------------------------
  var ws = null, welcomed = false, attempt = 0, retryTimer = null, stopped = false;
  var conversationId = null, email = null, hasMore = false, historyBusy = false;
  var byId = {};        // message id -> element
  var outbox = [];      // {id, text, el} not yet acked, in typing order
  var promptEl = null, unread = 0, isOpen = false;

  // ---- tiny DOM helpers -------------------------------------------------------
  function h(tag, attrs, kids) {
    var el = document.createElement(tag);
    for (var k in attrs || {}) {
      if (k === 'text') el.textContent = attrs[k];
      else if (k === 't') el.setAttribute('data-testid', 'fd-' + attrs[k]);
      else if (k === 'on') for (var ev in attrs.on) el.addEventListener(ev, attrs.on[ev]);
      else el.setAttribute(k, attrs[k]);
    }
    (kids || []).forEach(function (c) { if (c) el.appendChild(c); });
    return el;
  }
  function svg(d, size) {
    var NS = 'http://www.w3.org/2000/svg';
    var s = document.createElementNS(NS, 'svg');
    s.setAttribute('viewBox', '0 0 24 24');
    s.setAttribute('width', size); s.setAttribute('height', size);
    s.setAttribute('aria-hidden', 'true');
    var p = document.createElementNS(NS, 'path');
    p.setAttribute('d', d); p.setAttribute('fill', 'currentColor');
    s.appendChild(p);
    return s;
  }
  var ICON_CHAT = 'M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-4.5 3.6A.6.6 0 0 1 3.5 21v-3H4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2zm3 6.5a1.5 1.5 0 1 0 0 .01zm5 0a1.5 1.5 0 1 0 0 .01zm5 0a1.5 1.5 0 1 0 0 .01z';
  var ICON_CLOSE = 'M6.4 5 12 10.6 17.6 5 19 6.4 13.4 12l5.6 5.6-1.4 1.4-5.6-5.6L6.4 19 5 17.6 10.6 12 5 6.4z';
  var ICON_SEND = 'M3.4 20.4 21 12 3.4 3.6 3.4 10l12.6 2-12.6 2z';

  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var b = new Uint8Array(16);
    if (window.crypto && crypto.getRandomValues) crypto.getRandomValues(b);
    else for (var i = 0; i < 16; i++) b[i] = Math.floor(Math.random() * 256);
    b[6] = (b[6] & 15) | 64; b[8] = (b[8] & 63) | 128;
    var x = Array.prototype.map.call(b, function (n) { return (n + 256).toString(16).slice(1); }).join('');
    return x.slice(0, 8) + '-' + x.slice(8, 12) + '-' + x.slice(12, 16) + '-' + x.slice(16, 20) + '-' + x.slice(20);
  }

  // ---- first-party storage ----------------------------------------------------
  function readToken() {
    var m = document.cookie.match(/(?:^|;\s*)fd_visitor_token=([^;]*)/);
    if (m) { try { return decodeURIComponent(m[1]); } catch (e) { /* garbled: new visitor */ } }
    return store('get', COOKIE);
  }
  function saveToken(t) {
    document.cookie = COOKIE + '=' + encodeURIComponent(t) + '; Max-Age=' + MAX_AGE +
      '; Path=/; SameSite=Lax' + (location.protocol === 'https:' ? '; Secure' : '');
    if (readToken() !== t) store('set', COOKIE, t); // cookies off (file:, sandbox): fall back
  }
  function store(op, k, v, session) {
    try {
      var s = session ? sessionStorage : localStorage;
      if (op === 'get') return s.getItem(k);
      if (op === 'set') s.setItem(k, v); else s.removeItem(k);
    } catch (e) { /* storage blocked */ }
    return null;
  }

  // ---- the UI -----------------------------------------------------------------
  var host = h('div', { id: 'frontdesk-widget', t: 'host' });
  host.setAttribute('style', 'all:initial !important;position:fixed !important;right:0 !important;' +
    'bottom:0 !important;width:0 !important;height:0 !important;z-index:2147483000 !important;display:block !important');
  var root = host.attachShadow({ mode: 'open' });
  var accent = /^#[0-9a-fA-F]{3,8}$/.test(data.color || '') ? data.color : '#4f46e5';

  var style = h('style');
  style.textContent = `
:host{all:initial}
*{box-sizing:border-box;margin:0;padding:0}
.fd{--a:${accent};font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:#1f2330;-webkit-font-smoothing:antialiased}
button,input,textarea{font:inherit;color:inherit}
.launch{position:fixed;right:20px;bottom:20px;width:58px;height:58px;border-radius:50%;border:0;background:var(--a);color:#fff;cursor:pointer;display:grid;place-items:center;box-shadow:0 6px 20px rgba(20,20,50,.28);transition:transform .15s}
.launch:hover{transform:scale(1.06)}
.launch:focus-visible,.x:focus-visible,.send:focus-visible{outline:3px solid #a5b4fc;outline-offset:2px}
.badge{position:absolute;top:-2px;right:-2px;min-width:20px;height:20px;padding:0 6px;border-radius:10px;background:#e11d48;color:#fff;font-size:12px;font-weight:700;line-height:20px;text-align:center;border:2px solid #fff}
.panel{position:fixed;right:20px;bottom:92px;width:370px;height:min(580px,calc(100vh - 120px));background:#fff;border-radius:16px;box-shadow:0 12px 48px rgba(20,20,50,.25);display:flex;flex-direction:column;overflow:hidden;transform-origin:bottom right;animation:pop .16s ease-out}
@keyframes pop{from{opacity:0;transform:scale(.96) translateY(8px)}}
[hidden]{display:none!important}
.head{background:var(--a);color:#fff;padding:16px 18px;display:flex;align-items:center;gap:12px}
.head .t{flex:1;min-width:0}
.head b{display:block;font-size:16px;font-weight:650}
.head small{display:flex;align-items:center;gap:6px;font-size:12.5px;opacity:.92}
.dot{width:8px;height:8px;border-radius:50%;background:#4ade80;flex:none}
.off .dot{background:#fbbf24}
.x{background:transparent;border:0;color:#fff;width:32px;height:32px;border-radius:8px;cursor:pointer;display:grid;place-items:center;opacity:.9}
.x:hover{background:rgba(255,255,255,.16)}
.away{background:#fff7ed;color:#9a3412;border-bottom:1px solid #fed7aa;padding:9px 16px;font-size:13px;white-space:pre-wrap}
.log{flex:1;overflow-y:auto;padding:14px 14px 6px;background:#f7f7fb;display:flex;flex-direction:column;gap:8px}
.more{align-self:center;border:1px solid #d9d9e6;background:#fff;border-radius:14px;padding:3px 12px;font-size:12.5px;color:#4b5063;cursor:pointer}
.hello{align-self:center;text-align:center;color:#6b7080;font-size:13px;padding:18px 8px}
.m{max-width:82%;display:flex;flex-direction:column}
.m .b{padding:8px 12px;border-radius:14px;white-space:pre-wrap;overflow-wrap:anywhere}
.m .meta{font-size:11px;color:#8a8fa0;margin:2px 6px 0}
.visitor{align-self:flex-end;align-items:flex-end}
.visitor .b{background:var(--a);color:#fff;border-bottom-right-radius:4px}
.visitor[data-status=pending] .b{opacity:.65}
.visitor[data-status=failed] .b{background:#fee2e2;color:#991b1b}
.visitor[data-status=failed] .meta{color:#b91c1c;cursor:pointer}
.agent{align-self:flex-start}
.agent .b{background:#fff;border:1px solid #e7e7ef;border-bottom-left-radius:4px}
.agent .who{font-size:11.5px;color:#6b7080;margin:0 6px 2px;font-weight:600}
.system{align-self:center;max-width:92%;text-align:center}
.system .b{background:#eef0f6;color:#414658;font-size:13px}
.card{align-self:stretch;background:#fff;border:1px solid #e3e4ee;border-radius:12px;padding:12px;display:flex;flex-direction:column;gap:8px}
.card p{font-size:13.5px;white-space:pre-wrap}
.card form{display:flex;gap:6px}
.card input{flex:1;min-width:0;border:1px solid #cfd2de;border-radius:8px;padding:7px 10px;background:#fff}
.card input:focus,.foot textarea:focus{outline:2px solid var(--a);outline-offset:-1px;border-color:transparent}
.card button{border:0;border-radius:8px;background:var(--a);color:#fff;padding:0 14px;cursor:pointer;font-weight:600}
.card button:disabled{opacity:.6;cursor:default}
.err{color:#b91c1c;font-size:12.5px}
.ok{color:#166534;background:#f0fdf4;border-color:#bbf7d0}
.foot{display:flex;align-items:flex-end;gap:8px;padding:10px 12px;border-top:1px solid #ececf3;background:#fff}
.foot textarea{flex:1;resize:none;border:1px solid #d9dbe6;border-radius:12px;padding:8px 12px;max-height:110px;min-height:38px;background:#fff}
.send{width:38px;height:38px;border:0;border-radius:50%;background:var(--a);color:#fff;cursor:pointer;display:grid;place-items:center;flex:none}
.send:disabled{opacity:.45;cursor:default}
@media (max-width:480px){.panel{right:0;bottom:0;width:100vw;height:100%;border-radius:0}.panel:not([hidden])+.launch{display:none}}`;

  var iconChat = svg(ICON_CHAT, 28), iconX = svg(ICON_CLOSE, 26);
  var badge = h('span', { class: 'badge', t: 'badge', hidden: '' });
  var launcher = h('button', { class: 'launch', type: 'button', 'aria-label': 'Open chat', t: 'launcher',
    on: { click: function () { setOpen(!isOpen); } } }, [iconChat, badge]);
  var statusText = h('span', { text: 'Connecting…' });
  var status = h('small', { t: 'status', class: 'off' }, [h('span', { class: 'dot' }), statusText]);
  var away = h('div', { class: 'away', t: 'away', hidden: '' });
  var more = h('button', { class: 'more', type: 'button', t: 'load-earlier', hidden: '', text: 'Load earlier messages',
    on: { click: loadEarlier } });
  var hello = h('div', { class: 'hello', t: 'empty', text: 'Hi there 👋 Ask us anything, we usually reply in a few minutes.' });
  var log = h('div', { class: 'log', t: 'messages', role: 'log', 'aria-live': 'polite' }, [more, hello]);
  var input = h('textarea', { rows: '1', placeholder: 'Write a message…', 'aria-label': 'Message', t: 'input', maxlength: '4000' });
  var sendBtn = h('button', { class: 'send', type: 'submit', 'aria-label': 'Send', t: 'send', disabled: '' }, [svg(ICON_SEND, 18)]);
  var foot = h('form', { class: 'foot', on: { submit: function (e) { e.preventDefault(); submitText(); } } }, [input, sendBtn]);
  var panel = h('div', { class: 'panel', role: 'dialog', 'aria-label': 'Chat', t: 'panel', hidden: '' }, [
    h('div', { class: 'head' }, [
      h('div', { class: 't' }, [h('b', { text: data.title || 'Chat with us' }), status]),
      h('button', { class: 'x', type: 'button', 'aria-label': 'Close chat', t: 'close',
        on: { click: function () { setOpen(false); } } }, [svg(ICON_CLOSE, 20)])
    ]),
    away, log, foot
  ]);
  root.appendChild(style);
  root.appendChild(h('div', { class: 'fd' }, [panel, launcher]));

  input.addEventListener('input', function () {
    sendBtn.disabled = !input.value.trim();
    input.style.height = 'auto';
    input.style.height = Math.min(input.scrollHeight + 2, 110) + 'px';
  });
  input.addEventListener('keydown', function (e) {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); submitText(); }
  });

  function setOpen(open) {
    isOpen = open;
    panel.hidden = !open;
    launcher.setAttribute('aria-label', open ? 'Close chat' : 'Open chat');
    launcher.replaceChild(open ? iconX : iconChat, launcher.firstChild);
    store(open ? 'set' : 'del', openKey, '1', true);
    if (open) { unread = 0; renderBadge(); scrollDown(); input.focus(); }
  }
  function renderBadge() { badge.hidden = !unread; badge.textContent = unread > 9 ? '9+' : String(unread); }
  function setStatus(text, online) { statusText.textContent = text; status.className = online ? '' : 'off'; }
  function nearBottom() { return log.scrollHeight - log.scrollTop - log.clientHeight < 80; }
  function scrollDown() { log.scrollTop = log.scrollHeight; }

  // ---- messages ---------------------------------------------------------------
  // Every entry in the log carries a sort key: seq for stored messages, seq + .5 for
  // the prompt card, Infinity for messages not yet acked (they stay last, in order).
  function place(el, key) {
    el._key = key;
    if (el.parentNode) el.parentNode.removeChild(el);
    var kids = log.children;
    for (var i = 0; i < kids.length; i++) {
      if (kids[i]._key !== undefined && kids[i]._key > key) { log.insertBefore(el, kids[i]); return; }
    }
    log.appendChild(el);
  }
  function maxSeq() {
    var m = 0;
    for (var id in byId) m = Math.max(m, byId[id]._key);
    return m;
  }
  function minSeq() {
    var m = Infinity;
    for (var id in byId) m = Math.min(m, byId[id]._key);
    return m === Infinity ? null : m;
  }
  function timeOf(at) {
    try { return new Date(at).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }); } catch (e) { return ''; }
  }
  function bubble(kind, text, name) {
    var el = h('div', { class: 'm ' + kind, t: 'message', 'data-author': kind });
    if (kind === 'agent') el.appendChild(h('div', { class: 'who', text: name || 'Support' }));
    el.appendChild(h('div', { class: 'b', t: 'message-text', text: text }));
    el.appendChild(h('div', { class: 'meta' }));
    return el;
  }
  function markSent(el, m) {
    el.setAttribute('data-id', m.id);
    el.setAttribute('data-seq', m.seq);
    el.setAttribute('data-status', 'sent');
    el.lastChild.textContent = timeOf(m.at) + (m.author.kind === 'visitor' ? ' · Sent' : '');
  }
  // Adds a stored message unless it is already shown; returns true when it was new.
  function addMessage(m) {
    if (!m || !m.id || byId[m.id]) return false;
    if (m.conversation_id) conversationId = m.conversation_id;
    var kind = m.author && m.author.kind || 'system';
    var el = bubble(kind, m.text, m.author && m.author.name);
    markSent(el, m);
    byId[m.id] = el;
    place(el, m.seq);
    hello.hidden = true;
    return true;
  }
  function addAll(list) {
    var stick = nearBottom();
    (list || []).forEach(addMessage);
    if (stick) scrollDown();
  }

  function submitText() {
    var text = input.value.trim();
    if (!text) return;
    input.value = ''; input.style.height = 'auto'; sendBtn.disabled = true;
    var item = { id: uuid(), text: text, el: bubble('visitor', text) };
    item.el.setAttribute('data-status', 'pending');
    item.el.setAttribute('data-client-msg-id', item.id);
    item.el.lastChild.textContent = 'Sending…';
    place(item.el, Infinity);
    hello.hidden = true;
    outbox.push(item);
    scrollDown();
    transmit(item);
  }
  function transmit(item) {
    if (ws && welcomed && ws.readyState === 1) ws.send(JSON.stringify({ type: 'send', client_msg_id: item.id, text: item.text }));
    else item.el.lastChild.textContent = 'Waiting for connection…';
  }
  function takeOutbox(clientId) {
    for (var i = 0; i < outbox.length; i++) if (outbox[i].id === clientId) return outbox.splice(i, 1)[0];
    return null;
  }
  function onAck(f) {
    var item = takeOutbox(f.client_msg_id);
    var m = f.message;
    if (!item) { addAll([m]); return; }
    if (byId[m.id]) { item.el.remove(); return; } // already shown by a resume
    markSent(item.el, m);
    byId[m.id] = item.el;
    if (m.conversation_id) conversationId = m.conversation_id;
    place(item.el, m.seq);
    // Later unacked messages keep their place after this one.
    outbox.forEach(function (o) { place(o.el, Infinity); });
    scrollDown();
  }
  function onSendError(item, f) {
    item.el.setAttribute('data-status', 'failed');
    item.el.lastChild.textContent = (f.message || 'Not sent') + ' · Tap to retry';
    item.el.lastChild.onclick = function () {
      item.el.lastChild.onclick = null;
      item.el.setAttribute('data-status', 'pending');
      item.el.lastChild.textContent = 'Sending…';
      outbox.push(item);
      transmit(item);
    };
  }

  function loadEarlier() {
    var before = minSeq();
    if (historyBusy || !before || !ws || ws.readyState !== 1) return;
    historyBusy = true; more.disabled = true;
    ws.send(JSON.stringify({ type: 'history', before: before, limit: 50 }));
  }
  function onHistory(f) {
    historyBusy = false; more.disabled = false;
    var top = log.scrollHeight - log.scrollTop;
    (f.messages || []).forEach(addMessage);
    log.scrollTop = log.scrollHeight - top;
    hasMore = !!f.has_more; more.hidden = !hasMore;
  }

  // ---- the email prompt ---------------------------------------------------------
  function showPrompt(text) {
    if (email || promptEl) return;
    var err = h('div', { class: 'err', t: 'email-error', role: 'alert', hidden: '' });
    var field = h('input', { type: 'email', placeholder: 'you@example.com', 'aria-label': 'Your email',
      autocomplete: 'email', t: 'email-input', required: '' });
    var btn = h('button', { type: 'submit', t: 'email-submit', text: 'Send' });
    var form = h('form', { novalidate: '', on: { submit: function (e) {
      e.preventDefault();
      var v = field.value.trim();
      if (!v) { err.textContent = 'Please enter your email address.'; err.hidden = false; return; }
      if (!ws || !welcomed || ws.readyState !== 1) { err.textContent = 'Not connected — try again in a moment.'; err.hidden = false; return; }
      err.hidden = true; btn.disabled = true;
      ws.send(JSON.stringify({ type: 'submit_email', email: v }));
    } } }, [field, btn]);
    promptEl = h('div', { class: 'card', t: 'email-prompt' }, [
      h('p', { t: 'email-prompt-text', text: text || 'Leave your email and we will get back to you.' }), form, err]);
    promptEl._err = err; promptEl._btn = btn;
    place(promptEl, maxSeq() + 0.5);
    hello.hidden = true;
    store('set', promptKey, JSON.stringify({ c: conversationId, t: text }));
    scrollDown();
  }
  function onEmailCaptured(f) {
    email = f.email;
    store('del', promptKey);
    var card = h('div', { class: 'card ok', t: 'email-captured' }, [
      h('p', { text: 'Thanks — we’ll reply to ' + f.email })]);
    if (promptEl) { place(card, promptEl._key); promptEl.remove(); }
    else place(card, maxSeq() + 0.5);
    promptEl = card;
    scrollDown();
  }

  // ---- the connection -----------------------------------------------------------
  function connect() {
    clearTimeout(retryTimer);
    if (stopped || (ws && ws.readyState < 2)) return;
    welcomed = false;
    setStatus(attempt ? 'Reconnecting…' : 'Connecting…', false);
    var sock = ws = new WebSocket(wsUrl);
    sock.onopen = function () {
      var hi = { type: 'hello', visitor_token: readToken() || null, page: { url: location.href, title: document.title } };
      var held = maxSeq();
      if (held > 0) hi.resume_after = held;
      sock.send(JSON.stringify(hi));
    };
    sock.onmessage = function (e) {
      if (sock !== ws) return;
      var f;
      try { f = JSON.parse(e.data); } catch (err) { return; }
      handle(f);
    };
    sock.onclose = function (e) {
      if (sock !== ws) return;
      welcomed = false; historyBusy = false; more.disabled = false;
      if (e.code === 4003) { stopped = true; setStatus('Chat is not available on this site', false); return; }
      setStatus('Offline — reconnecting…', false);
      outbox.forEach(function (o) { o.el.lastChild.textContent = 'Waiting for connection…'; });
      // Exponential backoff with full jitter, capped at 30 s.
      var delay = Math.min(30000, 500 * Math.pow(2, attempt++));
      retryTimer = setTimeout(connect, delay / 2 + Math.random() * delay / 2);
    };
  }

  function handle(f) {
    switch (f.type) {
      case 'welcome': return onWelcome(f);
      case 'ack': return onAck(f);
      case 'message': {
        var stick = nearBottom();
        if (addMessage(f.message)) {
          if (f.message.author && f.message.author.kind !== 'visitor' && (!isOpen || document.hidden)) { unread++; renderBadge(); }
          if (stick || f.message.author.kind === 'visitor') scrollDown();
        }
        return;
      }
      case 'history': return onHistory(f);
      case 'email_prompt': return showPrompt(f.text);
      case 'email_captured': return onEmailCaptured(f);
      case 'error': {
        var item = f.ref && takeOutbox(f.ref);
        if (item) return onSendError(item, f);
        if (f.code === 'invalid_email' && promptEl && promptEl._err) {
          promptEl._err.textContent = f.message || 'That email address does not look right.';
          promptEl._err.hidden = false;
          promptEl._btn.disabled = false;
        }
        return;
      }
    }
  }

  function onWelcome(f) {
    if (conversationId && f.conversation_id && f.conversation_id !== conversationId) reset();
    var fresh = !Object.keys(byId).length;
    welcomed = true; attempt = 0;
    if (f.visitor_token) saveToken(f.visitor_token);
    if (f.conversation_id) conversationId = f.conversation_id;
    email = f.email || null;
    if (email && promptEl && !promptEl.classList.contains('ok')) { promptEl.remove(); promptEl = null; }
    var a = f.away || {};
    away.hidden = !(a.active && a.message);
    away.textContent = a.message || '';
    setStatus(a.active ? 'We’re away right now' : 'We typically reply in a few minutes', !a.active);
    addAll(f.messages);
    if (fresh) { hasMore = !!f.has_more; more.hidden = !hasMore; }
    // A prompt shown before a reload and not answered yet is shown again.
    if (!email && !promptEl) {
      try {
        var p = JSON.parse(store('get', promptKey) || 'null');
        if (p && p.c && p.c === conversationId) showPrompt(p.t);
      } catch (e) { /* ignore */ }
    }
    outbox.forEach(function (o) { o.el.lastChild.textContent = 'Sending…'; transmit(o); });
  }

  function reset() {
    for (var id in byId) byId[id].remove();
    byId = {};
    if (promptEl) { promptEl.remove(); promptEl = null; }
    hello.hidden = false;
  }

  window.addEventListener('online', function () { if (!welcomed) { attempt = 0; connect(); } });
  document.addEventListener('visibilitychange', function () {
    if (!document.hidden && !welcomed && !stopped) connect();
  });

  function mount() {
    document.body.appendChild(host);
    if (store('get', openKey, null, true)) setOpen(true);
    connect();
  }
  if (document.body) mount(); else document.addEventListener('DOMContentLoaded', mount);

  window.FrontdeskWidget = {
    open: function () { setOpen(true); },
    close: function () { setOpen(false); },
    toggle: function () { setOpen(!isOpen); }
  };
})();
