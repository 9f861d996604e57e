/* frontdesk inbox: the agents' page. Plain JavaScript, no build step.
 * Talks to /ws/agent as protocol.md ("Agent frames" and "Inbox workflow") describes.
 * Every text that came over the network is inserted with textContent, never as HTML.
 *
 * The list shows one filter at a time (status, assignee, search), asked of the server
 * with `list` and paged with its cursor as the agent scrolls; live summaries move rows
 * in and out of it. Rows are updated in place, never rebuilt, so focus and the scroll
 * position survive updates. Unread counts are the server's (per agent); the page only
 * says what it has read (`mark_read`) while the agent is looking. */
(function () {
  'use strict';

  var TOKEN_KEY = 'frontdesk.agentToken';
  var NOTIFY_KEY = 'frontdesk.notifications';
  var SOUND_KEY = 'frontdesk.sound';
  var PAGE = 50;                 // conversations per `list` page
  var SEARCH_DEBOUNCE = 300;     // ms after the last keystroke
  var TYPING_RENEW = 2000;       // renew our typing state at most this often
  var TYPING_IDLE = 4000;        // stop it after this long without a keystroke
  var TYPING_EXPIRY = 6000;      // others' typing ends without a renewal
  var BASE_TITLE = document.title;
  var $ = function (id) { return document.getElementById(id); };

  var S = {
    ws: null, token: null, ready: false, attempt: 0, retry: null,
    agent: null, inboxes: [], agents: [],
    convs: new Map(),          // id -> SUMMARY, every one this page heard of
    // The list: the filter, the ids it shows, the cursor of the next page.
    filter: { status: 'open', assignee: null, query: '' },
    view: new Set(), hits: new Set(), next: null, bottom: 0, listGen: 0, listQ: [], listLoading: false,
    moreLoading: false, listLocal: false,
    rows: new Map(),           // id -> row (its elements), for update in place
    openId: null,
    thread: new Map(),         // message id -> element, for the open conversation
    pending: new Map(),        // client_msg_id -> {conversation_id, text, el}
    paging: false, hasMore: false,
    marked: new Map(),         // conversation id -> the last seq sent in mark_read
    typing: new Map(),         // "conv|who" -> {conv, who, name, timer}
    myTyping: { conv: null, sentAt: 0, idle: null },
    titleCount: 0,
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
  function connected() { return !!(S.ws && S.ws.readyState === 1 && S.ready); }
  function send(frame) {
    if (connected()) { S.ws.send(JSON.stringify(frame)); return true; }
    toast('Not connected — reconnecting…', true);
    return false;
  }
  /** For frames nobody waits on (typing, mark_read): dropped while offline. */
  function sendQuiet(frame) {
    if (!connected()) return false;
    S.ws.send(JSON.stringify(frame));
    return true;
  }
  function setText(el, text) { if (el.textContent !== text) el.textContent = text; }
  function setAttr(el, name, value) {
    if (value === null) { if (el.hasAttribute(name)) el.removeAttribute(name); }
    else if (el.getAttribute(name) !== value) el.setAttribute(name, value);
  }
  function pref(key) { try { return localStorage.getItem(key); } catch (e) { return null; } }
  function setPref(key, v) { try { localStorage.setItem(key, v); } catch (e) { /* ignore */ } }
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
    setText(el.firstChild && el.firstChild.nodeType === 3 ? el.firstChild : el, initials(label));
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
  function labelOf(c) { return (c && c.visitor && c.visitor.label) || 'Unknown visitor'; }
  function statusOf(c) { return (c && c.status) || 'open'; }
  function isMe(a) { return !!(a && S.agent && a.id === S.agent.id); }
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
  /** The agent is looking at this tab: it is visible and has the focus. */
  function attentive() { return document.visibilityState === 'visible' && document.hasFocus(); }

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
    stopTyping();
    S.token = null;
    clearTimeout(S.retry);
    if (S.ws) { var w = S.ws; S.ws = null; w.close(1000); }
    S.convs.clear(); S.view.clear(); S.openId = null; S.thread.clear(); S.pending.clear(); S.marked.clear();
    S.typing.forEach(function (t) { clearTimeout(t.timer); });
    S.typing.clear();
    S.titleCount = 0; renderTitle();
    renderList();
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
      S.listQ = []; S.moreLoading = false;
      S.myTyping.conv = null;
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
      case 'conversations': return onConversations(f);
      case 'conversation': return onConversation(f);
      case 'conversation_updated': return upsert(f.conversation);
      case 'message': return onMessage(f.message, true);
      case 'ack': return onAck(f);
      case 'agent_typing':
        if (!f.agent || isMe(f.agent)) return;
        return onTyping(f.conversation_id, 'agent:' + f.agent.id, f.agent.name || 'An agent', f.active);
      case 'visitor_typing': return onTyping(f.conversation_id, 'visitor', null, f.active);
      case 'contact_lookup': return onLookup(f);
      case 'visitor_assigned': return onAssigned(f);
      case 'chatflow': return onChatflow(f);
      case 'error': return onError(f);
    }
  }

  function onReady(f) {
    var fromSignin = !$('signin').hidden;
    S.ready = true; S.attempt = 0;
    S.agent = f.agent || {};
    S.inboxes = f.inboxes || [];
    S.agents = f.agents || [];
    try { sessionStorage.setItem(TOKEN_KEY, S.token); } catch (e) { /* ignore */ }
    $('signin').hidden = true;
    $('app').hidden = false;
    setConn('online', 'Connected');
    $('me-name').textContent = S.agent.name || 'Agent';
    $('me-role').textContent = S.agent.role === 'admin' ? 'Admin' : 'Agent';
    paintAvatar($('me-avatar'), S.agent.name || 'Agent', S.agent.id);
    $('tab-settings').hidden = S.agent.role !== 'admin';
    if (S.agent.role !== 'admin' && !$('settings-view').hidden) showView('inbox');
    // Kept, not cleared: rows stay put until the list's answer replaces them.
    (f.conversations || []).forEach(function (c) { S.convs.set(c.id, c); });
    requestList(false);
    // After signing in, focus goes to the search box (not on touch screens, where it
    // would open the keyboard).
    if (fromSignin && !(window.matchMedia && matchMedia('(pointer: coarse)').matches)) $('search').focus();
    if (S.openId) {
      if (S.convs.has(S.openId)) requestOpen(null); else closeThread();
    }
    S.pending.forEach(function (p, id) {
      S.ws.send(JSON.stringify({ type: 'reply', conversation_id: p.conversation_id, client_msg_id: id, text: p.text }));
    });
    if (S.agent.role === 'admin' && !$('settings-view').hidden) loadChatflow(S.cf.inbox);
  }

  // ---- the list: filters, search, paging ----------------------------------------------
  function matchesFilter(c) {
    var f = S.filter;
    if (statusOf(c) !== f.status) return false;
    if (f.assignee === 'me') return isMe(c.assignee);
    if (f.assignee === 'none') return !c.assignee;
    return true;
  }
  /** Whether what the page holds of a conversation shows every word of the search (the
   * server searches all its messages; this sees the last one only). */
  function matchesQueryLocally(c) {
    var q = S.filter.query.toLowerCase();
    if (!q) return true;
    var v = c.visitor || {};
    var hay = [v.label, v.contact && v.contact.email, c.last_message && c.last_message.text].join(' ').toLowerCase();
    return q.split(/\s+/).every(function (w) { return hay.indexOf(w) >= 0; });
  }

  /** Asks for the first page of the current filter (`more` false), or the next one. */
  function requestList(more) {
    if (!connected()) return;
    if (more) {
      if (!S.next || S.moreLoading || S.listLoading || S.listLocal) return;
      S.moreLoading = true;
    } else {
      S.listGen++;
      S.listLoading = true; S.moreLoading = false;
    }
    S.ws.send(JSON.stringify({
      type: 'list', status: S.filter.status, assignee: S.filter.assignee,
      query: S.filter.query || null, before: more ? S.next : null, limit: PAGE
    }));
    S.listQ.push({ gen: S.listGen, more: !!more });
    renderList();
  }
  // Answers come in the order the frames were sent: the oldest request is answered.
  function onConversations(f) {
    var q = S.listQ.shift();
    if (!q || q.gen !== S.listGen) return;
    if (q.more) S.moreLoading = false;
    else { S.listLoading = false; S.view.clear(); S.hits.clear(); S.bottom = Infinity; S.listLocal = false; }
    (f.conversations || []).forEach(function (c) {
      S.convs.set(c.id, c);
      S.view.add(c.id);
      S.hits.add(c.id);
      S.bottom = Math.min(S.bottom, c.updated_at || 0);
    });
    S.next = f.next || null;
    renderList();
    fillPane();
  }
  /** A `list` refused (rate limited, or a server without it): true when it was ours. */
  function onListError(f) {
    if (!S.listQ.length || (f.code !== 'rate_limited' && f.code !== 'bad_frame')) return false;
    var q = S.listQ.shift();
    if (q.gen !== S.listGen) return true;
    if (q.more) S.moreLoading = false; else S.listLoading = false;
    if (f.code === 'rate_limited') {
      setTimeout(function () { if (q.gen === S.listGen) requestList(q.more); }, 3000);
    } else if (!q.more) {
      // A server that predates `list`: filter the newest conversations `ready` sent.
      S.listLocal = true; S.next = null; S.view.clear();
      S.convs.forEach(function (c) { if (matchesFilter(c) && matchesQueryLocally(c)) S.view.add(c.id); });
    }
    renderList();
    return true;
  }
  /** Loads pages until the list can scroll (a tall screen, a short first page). */
  function fillPane() {
    var list = $('conv-list');
    if (S.next && list.clientHeight > 0 && list.scrollHeight - list.scrollTop - list.clientHeight < 200) requestList(true);
  }
  $('conv-list').addEventListener('scroll', fillPane, { passive: true });
  // Up and down arrows move between the rows, Home and End to the first and last.
  $('conv-list').addEventListener('keydown', function (e) {
    var rows = Array.prototype.slice.call($('conv-list').querySelectorAll('.conv-btn'));
    var i = rows.indexOf(document.activeElement);
    if (i < 0) return;
    var to = { ArrowDown: i + 1, ArrowUp: i - 1, Home: 0, End: rows.length - 1 }[e.key];
    if (to === undefined || !rows[to]) return;
    e.preventDefault();
    rows[to].focus();
  });

  function setFilter(patch) {
    Object.assign(S.filter, patch);
    document.querySelectorAll('#status-filter .seg-btn').forEach(function (b) {
      b.setAttribute('aria-pressed', String(b.getAttribute('data-status') === S.filter.status));
    });
    document.querySelectorAll('#assignee-filter .seg-btn').forEach(function (b) {
      b.setAttribute('aria-pressed', String((b.getAttribute('data-assignee') || null) === S.filter.assignee));
    });
    S.view.clear(); S.next = null;
    $('conv-list').scrollTop = 0;
    requestList(false);
  }
  $('status-filter').addEventListener('click', function (e) {
    var b = e.target.closest('.seg-btn');
    if (b) setFilter({ status: b.getAttribute('data-status') });
  });
  $('assignee-filter').addEventListener('click', function (e) {
    var b = e.target.closest('.seg-btn');
    if (b) setFilter({ assignee: b.getAttribute('data-assignee') || null });
  });
  var searchTimer = null;
  $('search').addEventListener('input', function () {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(function () {
      var q = $('search').value.trim();
      if (q !== S.filter.query) setFilter({ query: q });
    }, SEARCH_DEBOUNCE);
  });

  /** A summary heard live: kept, and moved into or out of the list by the filter. */
  function upsert(c) {
    if (!c || !c.id) return;
    S.convs.set(c.id, c);
    place(c);
    renderList();
    if (c.id === S.openId) renderThreadHead();
  }
  function place(c) {
    if (!matchesFilter(c)) { S.view.delete(c.id); return; }
    if (S.view.has(c.id)) return;
    // One the server listed comes back; another joins if it is newer than the last row
    // loaded (an older one comes with its page) and, under a search, its text shows
    // the words.
    var loaded = !S.next || (c.updated_at || 0) >= S.bottom;
    var found = S.hits.has(c.id) || (loaded && matchesQueryLocally(c));
    if (S.listLocal ? matchesQueryLocally(c) : found && !S.listLoading) S.view.add(c.id);
  }

  function makeRow(id) {
    var r = {};
    r.avatar = h('span', { class: 'avatar' });
    r.avatar.appendChild(document.createTextNode(''));
    r.presence = h('span', { class: 'presence', 'data-testid': 'online-dot' });
    r.avatar.appendChild(r.presence);
    r.label = h('span', { class: 'conv-label', 'data-testid': 'conv-label' });
    r.time = h('time', { class: 'conv-time' });
    r.preview = h('span', { class: 'conv-preview', 'data-testid': 'conv-preview' });
    r.assignee = h('span', { class: 'conv-assignee', 'data-testid': 'conv-assignee' });
    r.inbox = h('span', { class: 'conv-inbox' });
    r.unreadCount = document.createTextNode('');
    r.unread = h('span', { class: 'conv-unread', 'data-testid': 'conv-unread' });
    r.unread.appendChild(r.unreadCount);
    r.unread.appendChild(h('span', { class: 'sr-only', text: ' unread' }));
    r.btn = h('button', { type: 'button', class: 'conv-btn' }, [
      r.avatar,
      h('span', { class: 'conv-main' }, [
        h('span', { class: 'conv-top' }, [r.label, r.time]),
        r.preview,
        h('span', { class: 'conv-meta' }, [r.assignee, r.inbox])
      ]),
      r.unread
    ]);
    r.btn.addEventListener('click', function () { openConversation(id); });
    r.li = h('li', { class: 'conv', 'data-testid': 'conv-item', 'data-conversation-id': id }, [r.btn]);
    S.rows.set(id, r);
    return r;
  }
  function visitorTyping(id) { return S.typing.has(id + '|visitor'); }
  function updateRow(r, c) {
    var v = c.visitor || {};
    var label = labelOf(c);
    var lm = c.last_message;
    var unread = c.unread || 0;
    setText(r.label, label);
    paintAvatar(r.avatar, label, v.id);
    setAttr(r.presence, 'class', 'presence' + (v.online ? ' online' : ''));
    setAttr(r.presence, 'data-online', v.online ? 'true' : 'false');
    setAttr(r.presence, 'title', v.online ? 'Online' : 'Offline');
    setText(r.time, fmtTime(c.updated_at));
    var typing = visitorTyping(c.id);
    setText(r.preview, typing ? 'Typing…' : lm ? (lm.author.kind === 'agent' ? (lm.author.name ? lm.author.name + ': ' : 'Agent: ') :
      lm.author.kind === 'system' ? 'Auto: ' : '') + lm.text : 'No messages yet');
    r.preview.classList.toggle('typing', typing);
    setText(r.assignee, c.assignee ? (isMe(c.assignee) ? 'You' : c.assignee.name) : 'Unassigned');
    setText(r.inbox, S.inboxes.length > 1 ? c.inbox : '');
    setText(r.unreadCount, unread > 0 ? String(unread) : '');
    r.unread.hidden = unread === 0;
    setAttr(r.li, 'class', 'conv' + (c.id === S.openId ? ' selected' : '') + (unread > 0 ? ' unread' : ''));
    setAttr(r.li, 'data-status', statusOf(c));
    setAttr(r.li, 'data-unread', String(unread));
    setAttr(r.btn, 'aria-current', c.id === S.openId ? 'true' : null);
  }

  /** Brings the list's rows in line with S.view, in place: rows are reused, moved only
   * when their order changed, and the focused element and the scroll position stay. */
  function renderList() {
    var list = $('conv-list');
    var ids = Array.from(S.view).filter(function (id) { return S.convs.has(id); });
    ids.sort(function (a, b) {
      var d = (S.convs.get(b).updated_at || 0) - (S.convs.get(a).updated_at || 0);
      return d || (a < b ? 1 : a > b ? -1 : 0);
    });
    var anchor = null, offset = 0;
    if (list.scrollTop > 0) {
      for (var k = 0; k < list.children.length; k++) {
        var el = list.children[k];
        if (el.offsetTop + el.offsetHeight > list.scrollTop) { anchor = el; offset = el.offsetTop - list.scrollTop; break; }
      }
    }
    var active = document.activeElement;
    var keep = new Set(ids);
    S.rows.forEach(function (r, id) { if (!keep.has(id)) { r.li.remove(); S.rows.delete(id); } });
    ids.forEach(function (id, i) {
      var r = S.rows.get(id) || makeRow(id);
      updateRow(r, S.convs.get(id));
      if (list.children[i] !== r.li) list.insertBefore(r.li, list.children[i] || null);
    });
    if (active && active !== document.activeElement && active.isConnected) active.focus({ preventScroll: true });
    if (anchor && anchor.isConnected) list.scrollTop = anchor.offsetTop - offset;
    setAttr(list, 'aria-busy', String(S.listLoading));
    setAttr(list, 'data-query', S.filter.query);
    var loading = S.listLoading && !ids.length;
    setText($('conv-count'), loading ? '…' : ids.length + (S.next ? '+' : ''));
    setAttr($('conv-count'), 'title', S.next ? 'More load as you scroll' : null);
    $('list-empty').hidden = ids.length > 0;
    setText($('list-empty-title'), loading ? 'Loading…' : S.filter.query ? 'Nothing matches \u201c' + S.filter.query + '\u201d' :
      'No ' + S.filter.status + ' conversations' + (S.filter.assignee === 'me' ? ' assigned to you' : S.filter.assignee === 'none' ? ' without an assignee' : ''));
    setText($('list-empty-text'), loading ? '' : S.filter.query ? 'Search looks in names, emails and messages.' :
      'When a visitor writes in the chat widget, the conversation shows up here live.');
  }

  // ---- the open conversation -------------------------------------------------------
  function openConversation(id) {
    if (S.openId !== id) {
      stopTyping();
      S.openId = id;
      S.thread.forEach(function (el) { el.remove(); });
      S.thread.clear();
      Array.prototype.slice.call($('thread-log').querySelectorAll('.msg')).forEach(function (el) { el.remove(); });
      $('reply-input').value = '';
      $('reply-send').disabled = true;
    }
    $('thread-none').hidden = true;
    $('thread').hidden = false;
    $('details-none').hidden = true;
    $('details-body').hidden = false;
    $('app').setAttribute('data-pane', 'thread');
    renderList();
    renderThreadHead();
    renderTyping();
    requestOpen(null);
    $('reply-input').focus();
  }
  function closeThread() {
    stopTyping();
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

  // Status and assignee of the open conversation: the controls send, and show only
  // what the server said (a refusal puts them back).
  $('status-select').addEventListener('change', function () {
    if (!S.openId || !send({ type: 'set_status', conversation_id: S.openId, status: $('status-select').value })) renderThreadHead();
  });
  function assign(agentId) {
    if (!S.openId || !send({ type: 'assign', conversation_id: S.openId, agent_id: agentId })) renderThreadHead();
  }
  $('assignee-select').addEventListener('change', function () { assign($('assignee-select').value || null); });
  $('assign-me').addEventListener('click', function () { if (S.agent && S.agent.id) assign(S.agent.id); });

  function renderTools(c) {
    $('status-select').value = statusOf(c);
    var people = [{ id: '', name: 'Unassigned' }];
    var known = {};
    // Only those who may take this conversation: members of its inbox (and whoever has it).
    var members = S.agents.filter(function (a) { return !a.inboxes || a.inboxes.indexOf(c.inbox) >= 0; });
    members.concat(S.agent && S.agent.id ? [S.agent] : [], c.assignee ? [c.assignee] : []).forEach(function (a) {
      if (!a || !a.id || known[a.id]) return;
      known[a.id] = true;
      people.push({ id: a.id, name: (a.name || 'Agent') + (isMe(a) ? ' (you)' : '') });
    });
    var sel = $('assignee-select');
    var sig = people.map(function (p) { return p.id + '=' + p.name; }).join('|');
    if (sel.getAttribute('data-sig') !== sig) {
      sel.textContent = '';
      people.forEach(function (p) { sel.appendChild(h('option', { value: p.id, text: p.name })); });
      sel.setAttribute('data-sig', sig);
    }
    sel.value = c.assignee ? c.assignee.id : '';
    $('assign-me').hidden = isMe(c.assignee);
  }

  function renderThreadHead() {
    var c = S.convs.get(S.openId);
    if (!c) return;
    var v = c.visitor || {};
    var label = labelOf(c);
    $('thread-label').textContent = label;
    $('thread-sub').textContent = (v.online ? 'Online now' : 'Offline') + (v.contact && v.contact.email ? ' · ' + v.contact.email : '');
    $('thread-sub').className = 'thread-sub' + (v.online ? ' online' : '');
    paintAvatar($('thread-avatar'), label, v.id);
    $('thread-log').querySelectorAll('.msg[data-anon] .msg-who').forEach(function (w) { w.textContent = label; });
    renderTools(c);
    S.thread.forEach(renderMeta);
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
      $('assign-open').textContent = 'Link to a contact';
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
      h('div', { class: 'msg-meta', 'data-testid': 'thread-message-meta' })
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
    el._at = m.at;
    renderMeta(el);
  }
  /** An agent reply's time, and "Seen" once the visitor has seen its seq. */
  function renderMeta(el) {
    if (el.getAttribute('data-status') !== 'sent') return;
    var c = S.convs.get(S.openId);
    var seen = el.getAttribute('data-author') === 'agent' && !!c && el._seq <= (c.visitor_seen_seq || 0);
    setAttr(el, 'data-seen', seen ? 'true' : null);
    setText(el.lastChild, fmtTime(el._at) + (seen ? ' · Seen' : ''));
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
    place(c);
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
    markRead();
  }

  function onMessage(m, live) {
    if (!m) return;
    var c = S.convs.get(m.conversation_id);
    var fresh = !c || !c.last_message || c.last_message.seq < m.seq;
    if (c && (!c.last_message || c.last_message.seq <= m.seq)) {
      c.last_message = m;
      c.updated_at = Math.max(c.updated_at || 0, m.at || 0);
    }
    // Whoever sent it stopped typing.
    if (m.author.kind === 'visitor') onTyping(m.conversation_id, 'visitor', null, false);
    if (m.conversation_id === S.openId) {
      var stick = atBottom();
      if (addMsg(m) && stick) toBottom();
    }
    if (c) renderList();
    if (live && fresh && m.author.kind === 'visitor') alertVisitorMessage(m, c);
  }

  // ---- unread, title, notifications, sound ------------------------------------------------
  /** Tells the server this agent has read the open conversation, when they can see it. */
  function markRead() {
    var id = S.openId;
    if (!id || !attentive()) return;
    var c = S.convs.get(id);
    var seq = c && c.last_message ? c.last_message.seq : 0;
    S.thread.forEach(function (el) { if (el._seq !== undefined) seq = Math.max(seq, el._seq); });
    if (!seq || (S.marked.get(id) || 0) >= seq) return;
    if (sendQuiet({ type: 'mark_read', conversation_id: id, seq: seq })) S.marked.set(id, seq);
  }
  function renderTitle() {
    document.title = S.titleCount > 0 ? '(' + S.titleCount + ') ' + BASE_TITLE : BASE_TITLE;
  }
  function onAttention() {
    if (!attentive()) return;
    if (S.titleCount) { S.titleCount = 0; renderTitle(); }
    markRead();
  }
  window.addEventListener('focus', onAttention);
  document.addEventListener('visibilitychange', onAttention);

  function alertVisitorMessage(m, c) {
    var open = m.conversation_id === S.openId;
    var looking = attentive();
    if (open) markRead();
    if (!looking) { S.titleCount++; renderTitle(); }
    if (looking && open) return;
    notify(m, c);
    beep();
  }

  function notifyState() {
    if (!('Notification' in window)) return 'unsupported';
    var p = Notification.permission;
    if (p === 'granted') return pref(NOTIFY_KEY) === 'off' ? 'off' : 'on';
    return p; // 'default' or 'denied'
  }
  function renderAlertControls() {
    var b = $('notify-toggle');
    var st = notifyState();
    b.hidden = st === 'unsupported';
    b.disabled = st === 'denied';
    setText(b, { on: 'Notifications on', off: 'Notifications off', denied: 'Notifications blocked' }[st] || 'Enable notifications');
    setAttr(b, 'aria-pressed', String(st === 'on'));
    setAttr(b, 'data-state', st);
    setAttr(b, 'title', st === 'denied' ? 'Allow notifications for this site in the browser settings' : null);
    var on = pref(SOUND_KEY) === 'on';
    setText($('sound-toggle'), on ? 'Sound on' : 'Sound off');
    setAttr($('sound-toggle'), 'aria-pressed', String(on));
  }
  // The permission is asked for only here, after a click: never on load.
  $('notify-toggle').addEventListener('click', function () {
    var st = notifyState();
    if (st === 'on' || st === 'off') { setPref(NOTIFY_KEY, st === 'on' ? 'off' : 'on'); renderAlertControls(); return; }
    if (st !== 'default') return;
    var done = function () { setPref(NOTIFY_KEY, 'on'); renderAlertControls(); };
    var r = Notification.requestPermission(done);
    if (r && r.then) r.then(done, renderAlertControls);
  });
  function notify(m, c) {
    if (notifyState() !== 'on') return;
    try {
      var n = new Notification(c ? labelOf(c) : 'New conversation', { body: m.text.slice(0, 160), tag: m.conversation_id });
      n.onclick = function () { window.focus(); openConversation(m.conversation_id); n.close(); };
    } catch (e) { /* a browser that only notifies from a service worker */ }
  }
  // A short tone made with WebAudio: no file to fetch, nothing for the CSP to refuse.
  var audio = null;
  function beep(force) {
    if (!force && pref(SOUND_KEY) !== 'on') return;
    var AC = window.AudioContext || window.webkitAudioContext;
    if (!AC) return;
    try {
      if (!audio) audio = new AC();
      if (audio.state === 'suspended') audio.resume();
      var t = audio.currentTime, o = audio.createOscillator(), g = audio.createGain();
      o.type = 'sine';
      o.frequency.setValueAtTime(880, t);
      o.frequency.setValueAtTime(660, t + 0.12);
      g.gain.setValueAtTime(0.0001, t);
      g.gain.exponentialRampToValueAtTime(0.15, t + 0.02);
      g.gain.exponentialRampToValueAtTime(0.0001, t + 0.3);
      o.connect(g); g.connect(audio.destination);
      o.start(t); o.stop(t + 0.32);
    } catch (e) { /* no audio device */ }
  }
  $('sound-toggle').addEventListener('click', function () {
    var on = pref(SOUND_KEY) !== 'on';
    setPref(SOUND_KEY, on ? 'on' : 'off');
    renderAlertControls();
    if (on) beep(true); // a sample, and the click lets the audio start
  });

  // ---- typing, both ways -------------------------------------------------------------------
  function onTyping(conv, who, name, active) {
    if (!conv) return;
    var key = conv + '|' + who;
    var t = S.typing.get(key);
    if (!t && !active) return;
    if (t) clearTimeout(t.timer);
    if (active) {
      S.typing.set(key, { conv: conv, who: who, name: name, timer: setTimeout(function () {
        S.typing.delete(key); typingChanged(conv);
      }, TYPING_EXPIRY) });
    } else {
      S.typing.delete(key);
    }
    typingChanged(conv);
  }
  function typingChanged(conv) {
    var r = S.rows.get(conv), c = S.convs.get(conv);
    if (r && c) updateRow(r, c);
    if (conv === S.openId) renderTyping();
  }
  function renderTyping() {
    var lines = [];
    S.typing.forEach(function (t) {
      if (t.conv !== S.openId) return;
      if (t.who === 'visitor') lines.unshift('Visitor is typing…');
      else lines.push(t.name + ' is typing…');
    });
    setText($('typing'), lines.join(' · '));
  }

  /** Our own typing state for the open conversation: sent when it starts, renewed at
   * most every TYPING_RENEW while keys are pressed, ended on send, on an empty box and
   * after TYPING_IDLE without a keystroke. */
  function startTyping() {
    var T = S.myTyping, now = Date.now();
    if (T.conv && T.conv !== S.openId) stopTyping();
    if (T.conv !== S.openId || now - T.sentAt >= TYPING_RENEW) {
      if (sendQuiet({ type: 'typing', conversation_id: S.openId, active: true })) { T.conv = S.openId; T.sentAt = now; }
    }
    clearTimeout(T.idle);
    T.idle = setTimeout(stopTyping, TYPING_IDLE);
  }
  function stopTyping() {
    var T = S.myTyping;
    clearTimeout(T.idle);
    if (!T.conv) return;
    sendQuiet({ type: 'typing', conversation_id: T.conv, active: false });
    T.conv = null; T.sentAt = 0;
  }

  // ---- replying --------------------------------------------------------------------
  var reply = $('reply-input');
  reply.addEventListener('input', function () {
    var text = reply.value.trim();
    $('reply-send').disabled = !text;
    reply.style.height = 'auto';
    reply.style.height = Math.min(reply.scrollHeight + 2, 160) + 'px';
    if (!S.openId) return;
    if (text) startTyping(); else stopTyping();
  });
  reply.addEventListener('keydown', function (e) {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); sendReply(); }
  });
  $('composer').addEventListener('submit', function (e) { e.preventDefault(); sendReply(); });

  function sendReply() {
    var text = reply.value.trim();
    if (!text || !S.openId) return;
    stopTyping();
    var id = uuid();
    var el = msgEl({ author: { kind: 'agent', name: S.agent && S.agent.name }, text: text }, true);
    el.setAttribute('data-client-msg-id', id);
    S.pending.set(id, { conversation_id: S.openId, text: text, el: el });
    placeMsg(el);
    toBottom();
    reply.value = ''; reply.style.height = 'auto';
    $('reply-send').disabled = true;
    if (connected()) {
      S.ws.send(JSON.stringify({ type: 'reply', conversation_id: S.openId, client_msg_id: id, text: text }));
    } else {
      el.lastChild.textContent = 'Waiting for connection…';
    }
  }
  function onAck(f) {
    var p = S.pending.get(f.client_msg_id);
    var m = f.message;
    if (!p) { onMessage(m, false); return; }
    S.pending.delete(f.client_msg_id);
    onMessage(m, false); // updates the list preview; a duplicate element is skipped below
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
      p.el.lastChild.textContent = 'Not sent: ' + errorText(f);
      return;
    }
    if (onListError(f)) return;
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
    // A refused status or assignee change: the controls show the server's state again.
    if (S.openId) renderThreadHead();
    toast(errorText(f), true);
  }
  function errorText(f) {
    var known = {
      invalid_email: 'That email address does not look valid.',
      invalid_name: 'Please enter a first and a last name.',
      contact_exists: 'A contact with this email already exists. Look it up again to assign it.',
      contact_not_found: 'No contact has this email any more.',
      forbidden: 'Only admins can change this.',
      not_found: 'That conversation or agent is not available.',
      rate_limited: 'Too many requests at once. ' + (f.message || ''),
      internal: 'The server had a problem. Please try again.'
    };
    return known[f.code] || f.message || ('Error: ' + f.code);
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
      toast('Visitor linked to ' + (fullName(f.contact) || f.contact.email));
    }
  }

  // ---- chatflow settings (admins) -----------------------------------------------------------
  function showView(v) {
    $('inbox-view').hidden = v !== 'inbox';
    $('settings-view').hidden = v !== 'settings';
    $('tab-inbox').classList.toggle('active', v === 'inbox');
    $('tab-settings').classList.toggle('active', v === 'settings');
    setAttr($('tab-inbox'), 'aria-current', v === 'inbox' ? 'page' : null);
    setAttr($('tab-settings'), 'aria-current', v === 'settings' ? 'page' : null);
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
  renderAlertControls();
  renderList();
  try { S.token = sessionStorage.getItem(TOKEN_KEY); } catch (e) { S.token = null; }
  if (S.token) {
    $('app').hidden = false;
    $('signin').hidden = true;
    connect();
  } else {
    showSignin(null);
  }
})();
