/* frontdesk inbox: the agents' page. Plain JavaScript, no build step.
 * Talks to /ws/agent as protocol.md ("Agent frames") describes. Every text that came
 * over the network is inserted with textContent, never as HTML. */
(function () {
  'use strict';

  var TOKEN_KEY = 'frontdesk.agentToken';
  var $ = function (id) { return document.getElementById(id); };

  var S = {
    ws: null, token: null, ready: false, attempt: 0, retry: null,
    agent: null, inboxes: [],
    convs: new Map(),          // id -> SUMMARY
    unread: new Set(),
    openId: null,
    thread: new Map(),         // message id -> element, for the open conversation
    pending: new Map(),        // client_msg_id -> {conversation_id, text, el}
    paging: false, hasMore: false,
    lookupEmail: null, dialogBusy: false,
    cf: { inbox: null, data: null, saving: false }
  };

  // ---- helpers ---------------------------------------------------------------
  function h(tag, attrs, kids) {
    var el = document.createElement(tag);
    for (var k in attrs || {}) {
      var v = attrs[k];
      if (v === null || v === undefined || v === false) continue;
      if (k === 'text') el.textContent = v;
      else if (k === 'class') el.className = v;
      else el.setAttribute(k, v === true ? '' : v);
    }
    (kids || []).forEach(function (c) { if (c) el.appendChild(c); });
    return el;
  }
  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 15) | 64; b[8] = (b[8] & 63) | 128;
    var x = Array.prototype.map.call(b, function (n) { return (n + 256).toString(16).slice(1); }).join('');
    return [x.slice(0, 8), x.slice(8, 12), x.slice(12, 16), x.slice(16, 20), x.slice(20)].join('-');
  }
  function send(frame) {
    if (S.ws && S.ws.readyState === 1 && S.ready) { S.ws.send(JSON.stringify(frame)); return true; }
    toast('Not connected — reconnecting…', true);
    return false;
  }
  function initials(label) {
    if (!label || label === 'Unknown visitor') return '?';
    var parts = label.replace(/@.*/, '').split(/[\s._-]+/).filter(Boolean);
    return ((parts[0] || '?')[0] + (parts.length > 1 ? parts[parts.length - 1][0] : '')).toUpperCase();
  }
  function hue(s) {
    var n = 0;
    for (var i = 0; i < (s || '').length; i++) n = (n * 31 + s.charCodeAt(i)) % 360;
    return n;
  }
  function paintAvatar(el, label, seed) {
    el.textContent = initials(label);
    el.style.background = 'hsl(' + hue(seed || label) + ' 55% 88%)';
    el.style.color = 'hsl(' + hue(seed || label) + ' 45% 30%)';
  }
  function fmtTime(at) {
    if (!at) return '';
    var d = new Date(at), now = new Date();
    if (d.toDateString() === now.toDateString()) return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    return d.toLocaleDateString([], { month: 'short', day: 'numeric' });
  }
  function fmtFull(at) {
    return at ? new Date(at).toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' }) : '—';
  }
  function fullName(c) { return c ? [c.first_name, c.last_name].filter(Boolean).join(' ') : ''; }
  var toastTimer = null;
  function toast(text, bad) {
    var t = $('toast');
    t.textContent = text;
    t.className = 'toast' + (bad ? ' bad' : '');
    t.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(function () { t.hidden = true; }, 3500);
  }
  function setConn(state, text) {
    $('conn').setAttribute('data-state', state);
    $('conn-text').textContent = text;
  }

  // ---- sign in / connection ----------------------------------------------------
  function showSignin(error) {
    $('app').hidden = true;
    $('signin').hidden = false;
    $('signin-submit').disabled = false;
    var e = $('signin-error');
    e.hidden = !error; e.textContent = error || '';
    $('signin-token').focus();
  }
  $('signin-form').addEventListener('submit', function (ev) {
    ev.preventDefault();
    var t = $('signin-token').value.trim();
    if (!t) return;
    $('signin-submit').disabled = true;
    $('signin-error').hidden = true;
    S.token = t; S.attempt = 0;
    connect();
  });
  $('signout').addEventListener('click', function () {
    try { sessionStorage.removeItem(TOKEN_KEY); } catch (e) { /* ignore */ }
    S.token = null;
    clearTimeout(S.retry);
    if (S.ws) { var w = S.ws; S.ws = null; w.close(1000); }
    S.convs.clear(); S.unread.clear(); S.openId = null; S.thread.clear(); S.pending.clear();
    $('signin-token').value = '';
    showSignin(null);
  });

  function connect() {
    clearTimeout(S.retry);
    if (S.ws && S.ws.readyState < 2) return; // one connection at a time
    var url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws/agent';
    var ws = S.ws = new WebSocket(url);
    S.ready = false;
    setConn('connecting', S.attempt ? 'Reconnecting…' : 'Connecting…');
    ws.onopen = function () { ws.send(JSON.stringify({ type: 'auth', token: S.token })); };
    ws.onmessage = function (e) {
      if (ws !== S.ws) return;
      var f;
      try { f = JSON.parse(e.data); } catch (err) { return; }
      handle(f);
    };
    ws.onclose = function (e) {
      if (ws !== S.ws) return;
      S.ready = false;
      if (e.code === 4001) {
        try { sessionStorage.removeItem(TOKEN_KEY); } catch (er) { /* ignore */ }
        S.token = null;
        showSignin('That token was not accepted. Check it and try again.');
        return;
      }
      if (!$('signin').hidden) {
        showSignin('Could not reach the server. Is it running?');
        return;
      }
      setConn('offline', 'Offline — reconnecting…');
      var delay = Math.min(30000, 500 * Math.pow(2, S.attempt++));
      S.retry = setTimeout(connect, delay / 2 + Math.random() * delay / 2);
    };
  }

  function handle(f) {
    switch (f.type) {
      case 'ready': return onReady(f);
      case 'conversation': return onConversation(f);
      case 'conversation_updated': return upsert(f.conversation, true);
      case 'message': return onMessage(f.message);
      case 'ack': return onAck(f);
      case 'contact_lookup': return onLookup(f);
      case 'visitor_assigned': return onAssigned(f);
      case 'chatflow': return onChatflow(f);
      case 'error': return onError(f);
    }
  }

  function onReady(f) {
    S.ready = true; S.attempt = 0;
    S.agent = f.agent || {};
    S.inboxes = f.inboxes || [];
    try { sessionStorage.setItem(TOKEN_KEY, S.token); } catch (e) { /* ignore */ }
    $('signin').hidden = true;
    $('app').hidden = false;
    setConn('online', 'Connected');
    $('me-name').textContent = S.agent.name || 'Agent';
    $('me-role').textContent = S.agent.role === 'admin' ? 'Admin' : 'Agent';
    paintAvatar($('me-avatar'), S.agent.name || 'Agent', S.agent.id);
    $('tab-settings').hidden = S.agent.role !== 'admin';
    if (S.agent.role !== 'admin' && !$('settings-view').hidden) showView('inbox');
    S.convs.clear();
    (f.conversations || []).forEach(function (c) { S.convs.set(c.id, c); });
    renderList();
    if (S.openId) {
      if (S.convs.has(S.openId)) requestOpen(null); else closeThread();
    }
    S.pending.forEach(function (p, id) {
      S.ws.send(JSON.stringify({ type: 'reply', conversation_id: p.conversation_id, client_msg_id: id, text: p.text }));
    });
    if (S.agent.role === 'admin' && !$('settings-view').hidden) loadChatflow(S.cf.inbox);
  }

  // ---- conversation list -----------------------------------------------------------
  function upsert(c, live) {
    if (!c || !c.id) return;
    var prev = S.convs.get(c.id);
    S.convs.set(c.id, c);
    if (live && c.id !== S.openId && c.last_message && c.last_message.author.kind === 'visitor' &&
        (!prev || !prev.last_message || prev.last_message.id !== c.last_message.id)) S.unread.add(c.id);
    renderList();
    if (c.id === S.openId) renderThreadHead();
  }

  function renderList() {
    var list = $('conv-list');
    var convs = Array.from(S.convs.values()).sort(function (a, b) { return (b.updated_at || 0) - (a.updated_at || 0); });
    list.textContent = '';
    convs.forEach(function (c) {
      var v = c.visitor || {};
      var label = v.label || 'Unknown visitor';
      var lm = c.last_message;
      var preview = lm ? (lm.author.kind === 'agent' ? (lm.author.name ? lm.author.name + ': ' : 'Agent: ') : lm.author.kind === 'system' ? 'Auto: ' : '') + lm.text : 'No messages yet';
      var avatar = h('span', { class: 'avatar' });
      paintAvatar(avatar, label, v.id);
      avatar.appendChild(h('span', { class: 'presence' + (v.online ? ' online' : ''), 'data-testid': 'online-dot',
        'data-online': v.online ? 'true' : 'false', title: v.online ? 'Online' : 'Offline' }));
      var btn = h('button', { type: 'button', class: 'conv-btn' }, [
        avatar,
        h('span', { class: 'conv-main' }, [
          h('span', { class: 'conv-top' }, [
            h('span', { class: 'conv-label', 'data-testid': 'conv-label', text: label }),
            h('time', { class: 'conv-time', text: fmtTime(c.updated_at) })
          ]),
          h('span', { class: 'conv-preview', 'data-testid': 'conv-preview', text: preview }),
          S.inboxes.length > 1 ? h('span', { class: 'conv-inbox', text: c.inbox }) : null
        ])
      ]);
      btn.addEventListener('click', function () { openConversation(c.id); });
      var cls = 'conv' + (c.id === S.openId ? ' selected' : '') + (S.unread.has(c.id) ? ' unread' : '');
      list.appendChild(h('li', { class: cls, 'data-testid': 'conv-item', 'data-conversation-id': c.id }, [btn]));
    });
    $('conv-count').textContent = String(convs.length);
    $('list-empty').hidden = convs.length > 0;
  }

  // ---- the open conversation -------------------------------------------------------
  function openConversation(id) {
    if (S.openId !== id) {
      S.openId = id;
      S.thread.forEach(function (el) { el.remove(); });
      S.thread.clear();
      Array.prototype.slice.call($('thread-log').querySelectorAll('.msg')).forEach(function (el) { el.remove(); });
      $('reply-input').value = '';
      $('reply-send').disabled = true;
    }
    S.unread.delete(id);
    $('thread-none').hidden = true;
    $('thread').hidden = false;
    $('details-none').hidden = true;
    $('details-body').hidden = false;
    $('app').setAttribute('data-pane', 'thread');
    renderList();
    renderThreadHead();
    requestOpen(null);
    $('reply-input').focus();
  }
  function closeThread() {
    S.openId = null;
    $('thread').hidden = true; $('thread-none').hidden = false;
    $('details-body').hidden = true; $('details-none').hidden = false;
    $('app').setAttribute('data-pane', 'list');
    renderList();
  }
  function requestOpen(before) {
    if (before !== null) S.paging = true;
    send({ type: 'open', conversation_id: S.openId, before: before, limit: 50 });
  }
  $('load-earlier').addEventListener('click', function () {
    var min = Infinity;
    S.thread.forEach(function (el) { min = Math.min(min, Number(el.getAttribute('data-seq'))); });
    if (min !== Infinity && !S.paging) requestOpen(min);
  });
  $('back').addEventListener('click', function () { $('app').setAttribute('data-pane', 'list'); });
  $('details-toggle').addEventListener('click', function () {
    var app = $('app');
    app.setAttribute('data-pane', app.getAttribute('data-pane') === 'details' ? 'thread' : 'details');
  });
  $('details-close').addEventListener('click', function () { $('app').setAttribute('data-pane', 'thread'); });

  function renderThreadHead() {
    var c = S.convs.get(S.openId);
    if (!c) return;
    var v = c.visitor || {};
    var label = v.label || 'Unknown visitor';
    $('thread-label').textContent = label;
    $('thread-sub').textContent = (v.online ? 'Online now' : 'Offline') + (v.contact && v.contact.email ? ' · ' + v.contact.email : '');
    $('thread-sub').className = 'thread-sub' + (v.online ? ' online' : '');
    paintAvatar($('thread-avatar'), label, v.id);
    $('thread-log').querySelectorAll('.msg[data-anon] .msg-who').forEach(function (w) { w.textContent = label; });
    // details pane
    paintAvatar($('d-avatar'), label, v.id);
    $('d-label').textContent = label;
    $('d-presence').textContent = v.online ? 'Online now' : 'Offline';
    $('d-presence').className = 'presence-text' + (v.online ? ' online' : '');
    var box = $('d-contact');
    box.textContent = '';
    if (v.contact) {
      var ct = v.contact;
      box.appendChild(h('dl', { class: 'facts' }, [
        h('dt', { text: 'Name' }), h('dd', { 'data-testid': 'details-contact-name', text: fullName(ct) || '—' }),
        h('dt', { text: 'Email' }), h('dd', { 'data-testid': 'details-contact-email', text: ct.email }),
        h('dt', { text: 'Source' }), h('dd', { text: ct.source === 'email_capture' ? 'Left their email in the chat' : 'Added by an agent' }),
        h('dt', { text: 'Since' }), h('dd', { text: fmtFull(ct.created_at) })
      ]));
      $('assign-open').textContent = 'Change contact';
    } else {
      box.appendChild(h('p', { class: 'muted', text: 'This visitor is not linked to a contact yet.' }));
      $('assign-open').textContent = 'Assign visitor';
    }
    $('d-inbox').textContent = c.inbox || '';
    $('d-started').textContent = fmtFull(c.created_at);
    $('d-updated').textContent = fmtFull(c.updated_at);
    $('d-visitor').textContent = v.id || '';
    var page = $('d-page');
    page.textContent = '';
    var url = v.page && v.page.url;
    if (url && /^https?:\/\//i.test(url)) {
      var a = h('a', { href: url, target: '_blank', rel: 'noopener noreferrer', text: (v.page.title || url) });
      a.title = url;
      page.appendChild(a);
    } else {
      page.textContent = (v.page && (v.page.title || v.page.url)) || '—';
    }
  }

  function msgEl(m, pending) {
    var kind = (m.author && m.author.kind) || 'system';
    var c = S.convs.get(m.conversation_id || S.openId);
    var label = c && c.visitor && c.visitor.label;
    var name = kind === 'agent' ? (m.author.name || 'Agent') : kind === 'visitor' ? (m.author.name || label || 'Visitor') : 'Automatic message';
    var el = h('div', { class: 'msg ' + kind, 'data-testid': 'thread-message', 'data-author': kind }, [
      h('div', { class: 'msg-who', text: name }),
      h('div', { class: 'msg-body', 'data-testid': 'thread-message-text', text: m.text }),
      h('div', { class: 'msg-meta' })
    ]);
    if (kind === 'visitor' && !m.author.name) el.setAttribute('data-anon', '');
    if (pending) { el.setAttribute('data-status', 'pending'); el.lastChild.textContent = 'Sending…'; }
    else stamp(el, m);
    return el;
  }
  function stamp(el, m) {
    el.setAttribute('data-id', m.id);
    el.setAttribute('data-seq', m.seq);
    el.setAttribute('data-status', 'sent');
    el._seq = m.seq;
    el.lastChild.textContent = fmtTime(m.at);
  }
  // Inserts by seq; messages awaiting their ack stay at the end.
  function placeMsg(el) {
    var log = $('thread-log');
    var seq = el._seq === undefined ? Infinity : el._seq;
    var kids = log.querySelectorAll('.msg');
    for (var i = 0; i < kids.length; i++) {
      var k = kids[i]._seq === undefined ? Infinity : kids[i]._seq;
      if (kids[i] !== el && k > seq) { log.insertBefore(el, kids[i]); return; }
    }
    log.appendChild(el);
  }
  function addMsg(m) {
    if (!m || S.thread.has(m.id)) return false;
    var el = msgEl(m, false);
    S.thread.set(m.id, el);
    placeMsg(el);
    return true;
  }
  function atBottom() { var l = $('thread-log'); return l.scrollHeight - l.scrollTop - l.clientHeight < 80; }
  function toBottom() { var l = $('thread-log'); l.scrollTop = l.scrollHeight; }

  function onConversation(f) {
    var c = f.conversation;
    if (!c) return;
    S.convs.set(c.id, c);
    if (c.id !== S.openId) { renderList(); return; }
    var log = $('thread-log');
    var paging = S.paging;
    S.paging = false;
    var fromBottom = log.scrollHeight - log.scrollTop;
    (f.messages || []).forEach(addMsg);
    if (paging) log.scrollTop = log.scrollHeight - fromBottom; else toBottom();
    // has_more describes the page before the oldest message we hold.
    if (paging || S.thread.size <= (f.messages || []).length) S.hasMore = !!f.has_more;
    $('load-earlier').hidden = !S.hasMore;
    renderList();
    renderThreadHead();
  }

  function onMessage(m) {
    if (!m) return;
    var c = S.convs.get(m.conversation_id);
    if (c && (!c.last_message || c.last_message.seq <= m.seq)) {
      c.last_message = m;
      c.updated_at = Math.max(c.updated_at || 0, m.at || 0);
      if (m.conversation_id !== S.openId && m.author.kind === 'visitor') S.unread.add(c.id);
      renderList();
    }
    if (m.conversation_id === S.openId) {
      var stick = atBottom();
      if (addMsg(m) && stick) toBottom();
    }
  }

  // ---- replying --------------------------------------------------------------------
  var reply = $('reply-input');
  reply.addEventListener('input', function () {
    $('reply-send').disabled = !reply.value.trim();
    reply.style.height = 'auto';
    reply.style.height = Math.min(reply.scrollHeight + 2, 160) + 'px';
  });
  reply.addEventListener('keydown', function (e) {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); sendReply(); }
  });
  $('composer').addEventListener('submit', function (e) { e.preventDefault(); sendReply(); });

  function sendReply() {
    var text = reply.value.trim();
    if (!text || !S.openId) return;
    var id = uuid();
    var el = msgEl({ author: { kind: 'agent', name: S.agent && S.agent.name }, text: text }, true);
    el.setAttribute('data-client-msg-id', id);
    S.pending.set(id, { conversation_id: S.openId, text: text, el: el });
    placeMsg(el);
    toBottom();
    reply.value = ''; reply.style.height = 'auto';
    $('reply-send').disabled = true;
    if (S.ws && S.ws.readyState === 1 && S.ready) {
      S.ws.send(JSON.stringify({ type: 'reply', conversation_id: S.openId, client_msg_id: id, text: text }));
    } else {
      el.lastChild.textContent = 'Waiting for connection…';
    }
  }
  function onAck(f) {
    var p = S.pending.get(f.client_msg_id);
    var m = f.message;
    if (!p) { onMessage(m); return; }
    S.pending.delete(f.client_msg_id);
    onMessage(m); // updates the list preview; a duplicate element is skipped below
    if (S.thread.has(m.id) && S.thread.get(m.id) !== p.el) { p.el.remove(); return; }
    stamp(p.el, m);
    S.thread.set(m.id, p.el);
    if (p.conversation_id === S.openId) placeMsg(p.el);
  }

  // ---- errors ----------------------------------------------------------------------
  function onError(f) {
    var p = f.ref && S.pending.get(f.ref);
    if (p) {
      S.pending.delete(f.ref);
      p.el.setAttribute('data-status', 'failed');
      p.el.lastChild.textContent = 'Not sent: ' + (f.message || f.code);
      return;
    }
    if ($('assign-dialog').open && S.dialogBusy) {
      S.dialogBusy = false;
      setDialogBusy(false);
      var e = $('assign-error');
      e.textContent = errorText(f);
      e.hidden = false;
      return;
    }
    if (S.cf.saving) {
      S.cf.saving = false;
      $('cf-save').disabled = false;
      $('cf-status').textContent = errorText(f);
      $('cf-status').className = 'form-status bad';
      return;
    }
    if (f.code === 'not_found' && S.openId && S.paging === false) {
      toast('That conversation is not available.', true);
      return;
    }
    toast(errorText(f), true);
  }
  function errorText(f) {
    var known = {
      invalid_email: 'That email address does not look valid.',
      invalid_name: 'Please enter a first and a last name.',
      contact_exists: 'A contact with this email already exists. Look it up again to assign it.',
      contact_not_found: 'No contact has this email any more.',
      forbidden: 'Only admins can change this.',
      not_found: 'That conversation is not available.'
    };
    return f.message || known[f.code] || ('Error: ' + f.code);
  }

  // ---- the assign dialog ---------------------------------------------------------------
  var dialog = $('assign-dialog');
  function setDialogBusy(busy) {
    ['assign-lookup', 'assign-confirm', 'assign-create'].forEach(function (id) { $(id).disabled = busy; });
  }
  function resetDialogSteps() {
    $('assign-found').hidden = true;
    $('assign-new').hidden = true;
    $('assign-error').hidden = true;
    S.lookupEmail = null;
  }
  $('assign-open').addEventListener('click', function () {
    if (!S.openId) return;
    resetDialogSteps();
    S.dialogBusy = false; setDialogBusy(false);
    $('assign-email').value = '';
    $('assign-first').value = ''; $('assign-last').value = '';
    dialog.showModal();
    $('assign-email').focus();
  });
  $('assign-close').addEventListener('click', function () { dialog.close(); });
  $('assign-email').addEventListener('input', resetDialogSteps);
  $('assign-lookup-form').addEventListener('submit', function (e) {
    e.preventDefault();
    var email = $('assign-email').value.trim();
    resetDialogSteps();
    if (!email) { showDialogError('Type the visitor\u2019s email first.'); return; }
    S.lookupEmail = email;
    if (send({ type: 'lookup_contact', email: email })) { S.dialogBusy = true; setDialogBusy(true); }
  });
  function showDialogError(text) { var e = $('assign-error'); e.textContent = text; e.hidden = false; }
  function onLookup(f) {
    if (!dialog.open || !S.lookupEmail || (f.email || '').toLowerCase() !== S.lookupEmail.toLowerCase()) return;
    S.dialogBusy = false; setDialogBusy(false);
    if (f.contact) {
      var c = f.contact;
      var name = fullName(c) || c.email;
      $('af-name').textContent = name;
      $('af-email').textContent = c.email;
      paintAvatar($('af-avatar'), name, c.id);
      $('assign-found').hidden = false;
      $('assign-confirm').focus();
    } else {
      $('assign-new').hidden = false;
      $('assign-first').focus();
    }
  }
  $('assign-confirm').addEventListener('click', function () {
    if (!S.lookupEmail || !S.openId) return;
    $('assign-error').hidden = true;
    if (send({ type: 'assign_visitor', conversation_id: S.openId, email: S.lookupEmail })) { S.dialogBusy = true; setDialogBusy(true); }
  });
  $('assign-new').addEventListener('submit', function (e) {
    e.preventDefault();
    if (!S.lookupEmail || !S.openId) return;
    $('assign-error').hidden = true;
    var frame = { type: 'create_contact', conversation_id: S.openId, email: S.lookupEmail,
      first_name: $('assign-first').value.trim(), last_name: $('assign-last').value.trim() };
    if (send(frame)) { S.dialogBusy = true; setDialogBusy(true); }
  });
  function onAssigned(f) {
    var c = S.convs.get(f.conversation_id);
    if (c && f.contact) {
      c.visitor = Object.assign({}, c.visitor, { contact: f.contact, label: fullName(f.contact) || f.contact.email });
      renderList();
      if (c.id === S.openId) renderThreadHead();
    }
    if (dialog.open && f.conversation_id === S.openId) {
      S.dialogBusy = false; setDialogBusy(false);
      dialog.close();
      toast('Visitor assigned to ' + (fullName(f.contact) || f.contact.email));
    }
  }

  // ---- chatflow settings (admins) -----------------------------------------------------------
  function showView(v) {
    $('inbox-view').hidden = v !== 'inbox';
    $('settings-view').hidden = v !== 'settings';
    $('tab-inbox').classList.toggle('active', v === 'inbox');
    $('tab-settings').classList.toggle('active', v === 'settings');
    if (v === 'settings') {
      var sel = $('cf-inbox');
      sel.textContent = '';
      S.inboxes.forEach(function (k) { sel.appendChild(h('option', { value: k, text: k })); });
      if (S.cf.inbox && S.inboxes.indexOf(S.cf.inbox) >= 0) sel.value = S.cf.inbox;
      loadChatflow(sel.value);
    }
  }
  $('tab-inbox').addEventListener('click', function () { showView('inbox'); });
  $('tab-settings').addEventListener('click', function () { showView('settings'); });
  $('cf-inbox').addEventListener('change', function () { loadChatflow($('cf-inbox').value); });
  $('cf-when').addEventListener('change', syncChatflowForm);
  $('cf-away-mode').addEventListener('change', syncChatflowForm);
  $('cf-followup-enabled').addEventListener('change', syncChatflowForm);

  function loadChatflow(inbox) {
    if (!inbox) return;
    S.cf.inbox = inbox; S.cf.data = null;
    $('cf-status').textContent = 'Loading…';
    $('cf-status').className = 'form-status';
    $('cf-save').disabled = true;
    send({ type: 'get_chatflow', inbox: inbox });
  }
  function syncChatflowForm() {
    $('cf-delay').disabled = $('cf-when').value !== 'no_reply';
    $('cf-message').disabled = $('cf-when').value === 'never';
    $('cf-away-message').disabled = $('cf-away-mode').value === 'off';
    $('cf-followup-delay').disabled = !$('cf-followup-enabled').checked;
  }
  function onChatflow(f) {
    if (f.inbox !== S.cf.inbox) return;
    var cf = f.chatflow || {};
    var ec = cf.email_capture || {}, aw = cf.away || {}, fu = cf.follow_up || {};
    S.cf.data = cf;
    $('cf-when').value = ec.when || 'no_reply';
    $('cf-delay').value = ec.delay_secs != null ? ec.delay_secs : 60;
    $('cf-message').value = ec.message || '';
    $('cf-away-mode').value = aw.mode || 'off';
    $('cf-away-message').value = aw.message || '';
    $('cf-followup-enabled').checked = fu.enabled !== false; // the server's default is on
    $('cf-followup-delay').value = fu.delay_secs != null ? fu.delay_secs : 120;
    syncChatflowForm();
    $('cf-save').disabled = false;
    $('cf-status').className = 'form-status' + (S.cf.saving ? ' good' : '');
    $('cf-status').textContent = S.cf.saving ? 'Saved' : '';
    S.cf.saving = false;
  }
  $('chatflow-form').addEventListener('submit', function (e) {
    e.preventDefault();
    if (!S.cf.inbox || !S.cf.data) return;
    var base = S.cf.data;
    var delay = parseInt($('cf-delay').value, 10);
    var fdelay = parseInt($('cf-followup-delay').value, 10);
    // Keep fields this page does not know about: the server may have added some.
    var chatflow = Object.assign({}, base, {
      email_capture: Object.assign({}, base.email_capture, {
        when: $('cf-when').value,
        delay_secs: isFinite(delay) ? delay : 60,
        message: $('cf-message').value.trim() || null
      }),
      away: Object.assign({}, base.away, {
        mode: $('cf-away-mode').value,
        message: $('cf-away-message').value.trim() || null
      }),
      follow_up: Object.assign({}, base.follow_up, {
        enabled: $('cf-followup-enabled').checked,
        delay_secs: isFinite(fdelay) ? fdelay : 120
      })
    });
    if (send({ type: 'update_chatflow', inbox: S.cf.inbox, chatflow: chatflow })) {
      S.cf.saving = true;
      $('cf-save').disabled = true;
      $('cf-status').className = 'form-status';
      $('cf-status').textContent = 'Saving…';
    }
  });

  window.addEventListener('online', function () {
    if (S.token && !S.ready && $('signin').hidden) { S.attempt = 0; connect(); }
  });

  // ---- start -----------------------------------------------------------------------------
  try { S.token = sessionStorage.getItem(TOKEN_KEY); } catch (e) { S.token = null; }
  if (S.token) {
    $('app').hidden = false;
    $('signin').hidden = true;
    connect();
  } else {
    showSignin(null);
  }
})();
