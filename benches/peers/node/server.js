#!/usr/bin/env node
// The benchmark peer: frontdesk's relay path built the most common way, with Node.js,
// `ws` and `better-sqlite3`.
//
// It speaks protocol version 1's visitor and agent frames for the relay path (see
// shared/protocol.md): `/ws/visitor?inbox=default` with hello/welcome (history from
// SQLite), send/ack (idempotent on client_msg_id, per-conversation seq), `message`
// fan-out to the visitor's other connections and to every agent, `history`; and
// `/ws/agent` with auth/ready, open and reply/ack. Email capture, contacts and chatflows
// are out of scope: the benchmark's relay, history, idle and churn workloads never need
// them.
//
// It is meant to be a fair baseline, not a strawman:
// - SQLite in WAL mode with synchronous=FULL, so an ack means the message is on disk;
// - the same group commit as frontdesk: writes are queued and committed in one
//   transaction per event-loop turn (setImmediate), and acks go out only after commit;
// - prepared statements, in-memory per-conversation sequence counters, an index on
//   (conversation_id, client_msg_id) for idempotency;
// - the same limits (64 KiB frames, 4000-character messages, 20 sends per 10 s per
//   connection unless --rate-limit says otherwise), the same heartbeat and hello
//   deadline, and slow consumers dropped (close 4029) instead of buffering without bound.
//
// Usage: node server.js --listen 127.0.0.1:8080 --data DIR [--agent-token TOKEN]
//                       [--rate-limit N]   (sends per 10 s per connection; 0 = none)
// The agent token may also come from FD_PEER_AGENT_TOKEN; when neither is given one is
// minted and written to DIR/admin-token, as frontdesk does.

'use strict';

const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { WebSocketServer, WebSocket } = require('ws');
const Database = require('better-sqlite3');

// ---------------------------------------------------------------------------------------
// Configuration

function parseArgs(argv) {
  const cfg = {
    listen: '127.0.0.1:8080',
    data: null,
    agentToken: process.env.FD_PEER_AGENT_TOKEN || null,
    rateLimit: 20,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) fail(`${arg} needs a value`);
      return argv[++i];
    };
    switch (arg) {
      case '--listen': cfg.listen = value(); break;
      case '--data': cfg.data = value(); break;
      case '--agent-token': cfg.agentToken = value(); break;
      case '--rate-limit': cfg.rateLimit = Number(value()); break;
      case '-h': case '--help':
        process.stdout.write('usage: node server.js --listen HOST:PORT --data DIR [--agent-token T] [--rate-limit N]\n');
        process.exit(0);
        break;
      default: fail(`unknown argument ${arg}`);
    }
  }
  if (!cfg.data) fail('--data DIR is required');
  if (!Number.isInteger(cfg.rateLimit) || cfg.rateLimit < 0) fail('--rate-limit must be a whole number');
  const m = /^(.*):(\d+)$/.exec(cfg.listen);
  if (!m) fail('--listen must be HOST:PORT');
  cfg.host = m[1];
  cfg.port = Number(m[2]);
  return cfg;
}

function fail(msg) {
  process.stderr.write(`peer: ${msg}\n`);
  process.exit(2);
}

const cfg = parseArgs(process.argv.slice(2));

const LIMITS = {
  frameBytes: 64 * 1024,
  textChars: 4000,
  rateWindowMs: 10_000,
  helloDeadlineMs: 10_000,
  heartbeatMs: 30_000,
  // A connection whose unsent bytes exceed this is not keeping up: drop it (4029), it
  // recovers with resume_after. frontdesk bounds its per-connection queue the same way.
  maxBufferedBytes: 1024 * 1024,
  pageSize: 50,
  maxHistory: 200,
};

const CLOSE = { BAD_TOKEN: 4001, ORIGIN: 4003, HELLO_TIMEOUT: 4008, TOO_SLOW: 4029 };

fs.mkdirSync(cfg.data, { recursive: true });

function readOrCreate(file, make) {
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch (e) {
    if (e.code !== 'ENOENT') throw e;
    const v = make();
    fs.writeFileSync(file, v + '\n', { mode: 0o600 });
    return v;
  }
}

const agentToken = cfg.agentToken
  || readOrCreate(path.join(cfg.data, 'admin-token'), () => crypto.randomBytes(24).toString('base64url'));
const tokenKey = Buffer.from(
  readOrCreate(path.join(cfg.data, 'token-key'), () => crypto.randomBytes(32).toString('hex')),
  'hex',
);

// ---------------------------------------------------------------------------------------
// Store

const db = new Database(path.join(cfg.data, 'peer.sqlite3'));
db.pragma('journal_mode = WAL');
db.pragma('synchronous = FULL');
db.pragma('busy_timeout = 5000');
db.pragma('cache_size = -65536'); // 64 MiB page cache
db.exec(`
  CREATE TABLE IF NOT EXISTS visitors (
    id TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    inbox TEXT NOT NULL,
    visitor_id TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE INDEX IF NOT EXISTS conversations_updated ON conversations (updated_at);
  CREATE TABLE IF NOT EXISTS messages (
    conversation_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    id TEXT NOT NULL,
    client_msg_id TEXT NOT NULL,
    author_kind TEXT NOT NULL,
    author_name TEXT,
    text TEXT NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, seq)
  ) WITHOUT ROWID;
  CREATE UNIQUE INDEX IF NOT EXISTS messages_client_id ON messages (conversation_id, client_msg_id);
`);

const stmt = {
  insertVisitor: db.prepare('INSERT OR IGNORE INTO visitors (id, created_at) VALUES (?, ?)'),
  insertConversation: db.prepare(
    'INSERT INTO conversations (id, inbox, visitor_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?)'),
  touchConversation: db.prepare('UPDATE conversations SET updated_at = ? WHERE id = ?'),
  insertMessage: db.prepare(
    `INSERT INTO messages (conversation_id, seq, id, client_msg_id, author_kind, author_name, text, at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
  conversationByVisitor: db.prepare('SELECT id, created_at, updated_at FROM conversations WHERE visitor_id = ?'),
  conversationById: db.prepare('SELECT id, visitor_id, created_at, updated_at FROM conversations WHERE id = ?'),
  lastSeq: db.prepare('SELECT max(seq) AS seq FROM messages WHERE conversation_id = ?'),
  byClientId: db.prepare(
    `SELECT conversation_id, seq, id, author_kind, author_name, text, at
       FROM messages WHERE conversation_id = ? AND client_msg_id = ?`),
  pageBefore: db.prepare(
    `SELECT conversation_id, seq, id, author_kind, author_name, text, at
       FROM messages WHERE conversation_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?`),
  after: db.prepare(
    `SELECT conversation_id, seq, id, author_kind, author_name, text, at
       FROM messages WHERE conversation_id = ? AND seq > ? ORDER BY seq ASC`),
  recentConversations: db.prepare(
    'SELECT id, visitor_id, created_at, updated_at FROM conversations ORDER BY updated_at DESC LIMIT 100'),
  lastMessage: db.prepare(
    `SELECT conversation_id, seq, id, author_kind, author_name, text, at
       FROM messages WHERE conversation_id = ? ORDER BY seq DESC LIMIT 1`),
};

function rowToMessage(r) {
  return {
    id: r.id,
    conversation_id: r.conversation_id,
    seq: r.seq,
    author: { kind: r.author_kind, name: r.author_name },
    text: r.text,
    at: r.at,
  };
}

// Conversation state kept in memory once touched: the next seq and the conversation's
// identity. All writes go through this process's single thread, so the counter cannot
// race; it is rebuilt from the table after a restart.
const conversations = new Map(); // conversation id -> Conv
const convByVisitor = new Map(); // visitor id -> Conv

function loadConversationOf(visitorId) {
  let conv = convByVisitor.get(visitorId);
  if (conv) return conv;
  const row = stmt.conversationByVisitor.get(visitorId);
  if (!row) return null;
  conv = remember(row.id, visitorId, row.created_at, row.updated_at, stmt.lastSeq.get(row.id).seq || 0);
  return conv;
}

function loadConversation(id) {
  let conv = conversations.get(id);
  if (conv) return conv;
  const row = stmt.conversationById.get(id);
  if (!row) return null;
  return remember(row.id, row.visitor_id, row.created_at, row.updated_at, stmt.lastSeq.get(row.id).seq || 0);
}

function remember(id, visitorId, createdAt, updatedAt, lastSeq) {
  const conv = {
    id, visitorId, inbox: 'default', createdAt, updatedAt, lastSeq,
    persisted: true,
    // client_msg_id -> { message, done, waiters } for writes not yet committed.
    pending: new Map(),
    lastMessage: null,
  };
  conversations.set(id, conv);
  convByVisitor.set(visitorId, conv);
  return conv;
}

// ---------------------------------------------------------------------------------------
// Group commit: writes queue up during one event-loop turn and are committed in one
// transaction in setImmediate; only then are acks and fan-out sent.

let queue = [];
let flushScheduled = false;
const stats = { flushes: 0, writes: 0, maxBatch: 0 };

const commitBatch = db.transaction((ops) => {
  for (const op of ops) {
    if (op.newConversation) {
      stmt.insertVisitor.run(op.conv.visitorId, op.message.at);
      stmt.insertConversation.run(op.conv.id, op.conv.inbox, op.conv.visitorId, op.conv.createdAt, op.message.at);
    }
    const m = op.message;
    stmt.insertMessage.run(m.conversation_id, m.seq, m.id, op.clientMsgId, m.author.kind, m.author.name, m.text, m.at);
    stmt.touchConversation.run(m.at, m.conversation_id);
  }
});

function enqueue(op) {
  queue.push(op);
  if (!flushScheduled) {
    flushScheduled = true;
    setImmediate(flush);
  }
}

function flush() {
  flushScheduled = false;
  const ops = queue;
  queue = [];
  if (ops.length === 0) return;
  let error = null;
  try {
    commitBatch(ops);
  } catch (e) {
    error = e;
    process.stderr.write(`peer: commit of ${ops.length} writes failed: ${e.message}\n`);
  }
  stats.flushes++;
  stats.writes += ops.length;
  if (ops.length > stats.maxBatch) stats.maxBatch = ops.length;
  for (const op of ops) {
    const entry = op.conv.pending.get(op.clientMsgId);
    op.conv.pending.delete(op.clientMsgId);
    if (error) {
      // Nothing of the batch was written: forget the in-memory state so the next touch
      // reloads it from the table, and tell every waiter.
      forget(op.conv);
      for (const w of entry.waiters) sendError(w.ws, 'internal', 'the message could not be stored', op.clientMsgId);
      continue;
    }
    op.conv.persisted = true;
    op.conv.updatedAt = op.message.at;
    op.conv.lastMessage = op.message;
    for (const w of entry.waiters) send(w.ws, w.ack);
    fanOut(op);
  }
}

function forget(conv) {
  conversations.delete(conv.id);
  if (convByVisitor.get(conv.visitorId) === conv) convByVisitor.delete(conv.visitorId);
}

// ---------------------------------------------------------------------------------------
// Live connections

const visitorSockets = new Map(); // visitor id -> Set<ws>
const agentSockets = new Set();

function send(ws, frame) {
  if (ws.readyState !== WebSocket.OPEN) return;
  if (ws.bufferedAmount > LIMITS.maxBufferedBytes) {
    // A close frame would only queue behind what the client is not reading: drop the
    // socket and its buffers now. The client reconnects with resume_after.
    ws.terminate();
    return;
  }
  ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
}

function sendError(ws, code, message, ref) {
  send(ws, { type: 'error', code, message, ref: ref === undefined ? null : ref });
}

function fanOut(op) {
  // Serialize once, send to many.
  const text = JSON.stringify({ type: 'message', message: op.message });
  const tabs = visitorSockets.get(op.conv.visitorId);
  if (tabs) {
    for (const ws of tabs) if (ws !== op.origin) send(ws, text);
  }
  for (const ws of agentSockets) if (ws !== op.origin) send(ws, text);
}

function summary(conv) {
  let last = conv.lastMessage;
  if (!last) {
    const r = stmt.lastMessage.get(conv.id);
    last = r ? rowToMessage(r) : null;
    conv.lastMessage = last;
  }
  return {
    id: conv.id,
    inbox: conv.inbox,
    visitor: {
      id: conv.visitorId,
      label: 'Unknown visitor',
      online: visitorSockets.has(conv.visitorId),
      contact: null,
    },
    last_message: last,
    created_at: conv.createdAt,
    updated_at: conv.updatedAt,
  };
}

// Visitor tokens: `v1.<visitor id>.<HMAC-SHA256 of it>`, opaque to clients, made and
// read only by the server. A token that does not verify is treated as absent.
function mintToken(visitorId) {
  const mac = crypto.createHmac('sha256', tokenKey).update(visitorId).digest('base64url');
  return `v1.${visitorId}.${mac}`;
}

function readToken(token) {
  if (typeof token !== 'string') return null;
  const parts = token.split('.');
  if (parts.length !== 3 || parts[0] !== 'v1') return null;
  const want = crypto.createHmac('sha256', tokenKey).update(parts[1]).digest();
  let got;
  try {
    got = Buffer.from(parts[2], 'base64url');
  } catch {
    return null;
  }
  if (got.length !== want.length || !crypto.timingSafeEqual(got, want)) return null;
  return parts[1];
}

function tokenFromCookie(header) {
  if (!header) return null;
  for (const part of header.split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === 'fd_visitor') return v.join('=');
  }
  return null;
}

class RateLimiter {
  constructor(limit, windowMs) {
    this.limit = limit;
    this.windowMs = windowMs;
    this.times = [];
  }
  allow(now) {
    if (this.limit === 0) return true;
    while (this.times.length && now - this.times[0] >= this.windowMs) this.times.shift();
    if (this.times.length >= this.limit) return false;
    this.times.push(now);
    return true;
  }
}

function parseFrame(ws, data, isBinary) {
  if (isBinary) {
    sendError(ws, 'bad_frame', 'binary frames are not part of the protocol');
    return null;
  }
  let frame;
  try {
    frame = JSON.parse(data.toString('utf8'));
  } catch {
    sendError(ws, 'bad_frame', 'frame is not valid JSON');
    return null;
  }
  if (frame === null || typeof frame !== 'object' || typeof frame.type !== 'string') {
    sendError(ws, 'bad_frame', 'frame does not match the protocol: missing field `type`');
    return null;
  }
  return frame;
}

function checkText(ws, text, ref) {
  if (typeof text !== 'string') {
    sendError(ws, 'bad_frame', 'frame does not match the protocol: missing field `text`', ref);
    return null;
  }
  const t = text.trim();
  if (t.length === 0) {
    sendError(ws, 'empty_message', 'the message is empty', ref);
    return null;
  }
  if ([...t].length > LIMITS.textChars) {
    sendError(ws, 'message_too_long', 'the message is longer than 4000 characters', ref);
    return null;
  }
  return t;
}

// Queues one message of `conv` by `author`, or joins the write already queued with the
// same client_msg_id; a client_msg_id already stored answers the stored message's ack.
function write(ws, conv, newConversation, clientMsgId, author, text, ackType) {
  const pending = conv.pending.get(clientMsgId);
  if (pending) {
    pending.waiters.push({ ws, ack: pending.ack });
    return;
  }
  if (conv.persisted) {
    const row = stmt.byClientId.get(conv.id, clientMsgId);
    if (row) {
      send(ws, { type: ackType, client_msg_id: clientMsgId, message: rowToMessage(row) });
      return;
    }
  }
  const message = {
    id: crypto.randomUUID(),
    conversation_id: conv.id,
    seq: ++conv.lastSeq,
    author,
    text,
    at: Date.now(),
  };
  const ack = JSON.stringify({ type: 'ack', client_msg_id: clientMsgId, message });
  conv.pending.set(clientMsgId, { ack, waiters: [{ ws, ack }] });
  enqueue({ conv, newConversation, clientMsgId, message, origin: ws });
}

function history(conv, before, limit) {
  if (!conv || !conv.persisted) return { messages: [], has_more: false };
  const rows = stmt.pageBefore.all(conv.id, before, limit + 1);
  const hasMore = rows.length > limit;
  if (hasMore) rows.pop();
  rows.reverse();
  return { messages: rows.map(rowToMessage), has_more: hasMore };
}

function clampLimit(limit) {
  if (limit === undefined || limit === null) return LIMITS.pageSize;
  if (!Number.isInteger(limit) || limit < 1) return 1;
  return Math.min(limit, LIMITS.maxHistory);
}

// ---------------------------------------------------------------------------------------
// Visitor sessions

function visitorSession(ws, cookieToken) {
  const limiter = new RateLimiter(cfg.rateLimit, LIMITS.rateWindowMs);
  let visitorId = null;
  const deadline = setTimeout(() => ws.close(CLOSE.HELLO_TIMEOUT, 'no hello'), LIMITS.helloDeadlineMs);

  ws.on('message', (data, isBinary) => {
    const frame = parseFrame(ws, data, isBinary);
    if (!frame) return;
    if (visitorId === null) {
      if (frame.type !== 'hello') {
        sendError(ws, 'not_authenticated', 'the first frame must be hello');
        return;
      }
      clearTimeout(deadline);
      visitorId = readToken(frame.visitor_token) || readToken(cookieToken) || crypto.randomUUID();
      let tabs = visitorSockets.get(visitorId);
      if (!tabs) visitorSockets.set(visitorId, (tabs = new Set()));
      tabs.add(ws);
      const conv = loadConversationOf(visitorId);
      let page;
      const resumeAfter = frame.resume_after;
      if (conv && conv.persisted && Number.isInteger(resumeAfter) && resumeAfter >= 0) {
        page = { messages: stmt.after.all(conv.id, resumeAfter).map(rowToMessage), has_more: false };
      } else {
        page = history(conv, Number.MAX_SAFE_INTEGER, LIMITS.pageSize);
      }
      send(ws, {
        type: 'welcome',
        protocol: 1,
        visitor_token: mintToken(visitorId),
        visitor_id: visitorId,
        conversation_id: conv && conv.persisted ? conv.id : null,
        messages: page.messages,
        has_more: page.has_more,
        email: null,
        away: { active: false, message: null },
      });
      return;
    }
    switch (frame.type) {
      case 'send': {
        const ref = typeof frame.client_msg_id === 'string' ? frame.client_msg_id : null;
        if (ref === null) {
          sendError(ws, 'bad_frame', 'frame does not match the protocol: missing field `client_msg_id`');
          return;
        }
        const text = checkText(ws, frame.text, ref);
        if (text === null) return;
        if (!limiter.allow(Date.now())) {
          sendError(ws, 'rate_limited', 'too many messages; slow down', ref);
          return;
        }
        // Looked up on every send: another tab may have created the conversation since
        // this one's hello, and a failed commit forgets it.
        let conv = loadConversationOf(visitorId);
        let created = false;
        if (!conv) {
          conv = remember(crypto.randomUUID(), visitorId, Date.now(), Date.now(), 0);
          conv.persisted = false;
          created = true;
        }
        write(ws, conv, created, ref, { kind: 'visitor', name: null }, text, 'ack');
        return;
      }
      case 'history': {
        const before = Number.isInteger(frame.before) ? frame.before : Number.MAX_SAFE_INTEGER;
        const conv = loadConversationOf(visitorId);
        send(ws, { type: 'history', ...history(conv, before, clampLimit(frame.limit)) });
        return;
      }
      case 'hello':
        sendError(ws, 'bad_frame', 'hello was already received');
        return;
      case 'submit_email':
        // Out of the peer's scope (no contacts); answered like an unknown frame.
        sendError(ws, 'bad_frame', 'submit_email is not supported by this peer');
        return;
      default:
        sendError(ws, 'bad_frame', `frame does not match the protocol: unknown variant \`${frame.type}\``);
    }
  });

  ws.on('close', () => {
    clearTimeout(deadline);
    if (visitorId === null) return;
    const tabs = visitorSockets.get(visitorId);
    if (tabs) {
      tabs.delete(ws);
      if (tabs.size === 0) visitorSockets.delete(visitorId);
    }
  });
}

// ---------------------------------------------------------------------------------------
// Agent sessions

const AGENT = { id: 'agent-admin', name: 'Admin', role: 'admin' };

function agentSession(ws) {
  const limiter = new RateLimiter(cfg.rateLimit, LIMITS.rateWindowMs);
  let authed = false;
  const deadline = setTimeout(() => ws.close(CLOSE.HELLO_TIMEOUT, 'no auth'), LIMITS.helloDeadlineMs);

  ws.on('message', (data, isBinary) => {
    const frame = parseFrame(ws, data, isBinary);
    if (!frame) return;
    if (!authed) {
      if (frame.type !== 'auth') {
        sendError(ws, 'not_authenticated', 'the first frame must be auth');
        return;
      }
      clearTimeout(deadline);
      const given = Buffer.from(String(frame.token));
      const want = Buffer.from(agentToken);
      if (given.length !== want.length || !crypto.timingSafeEqual(given, want)) {
        ws.close(CLOSE.BAD_TOKEN, 'bad token');
        return;
      }
      authed = true;
      agentSockets.add(ws);
      const recent = stmt.recentConversations.all().map((r) => {
        const conv = conversations.get(r.id)
          || remember(r.id, r.visitor_id, r.created_at, r.updated_at, stmt.lastSeq.get(r.id).seq || 0);
        return summary(conv);
      });
      send(ws, { type: 'ready', agent: AGENT, inboxes: ['default'], conversations: recent });
      return;
    }
    switch (frame.type) {
      case 'reply': {
        const ref = typeof frame.client_msg_id === 'string' ? frame.client_msg_id : null;
        if (ref === null || typeof frame.conversation_id !== 'string') {
          sendError(ws, 'bad_frame', 'frame does not match the protocol: missing field', ref);
          return;
        }
        const text = checkText(ws, frame.text, ref);
        if (text === null) return;
        if (!limiter.allow(Date.now())) {
          sendError(ws, 'rate_limited', 'too many messages; slow down', ref);
          return;
        }
        const conv = loadConversation(frame.conversation_id);
        if (!conv) {
          sendError(ws, 'not_found', 'no such conversation', ref);
          return;
        }
        write(ws, conv, false, ref, { kind: 'agent', name: AGENT.name }, text, 'ack');
        return;
      }
      case 'open': {
        const conv = typeof frame.conversation_id === 'string' ? loadConversation(frame.conversation_id) : null;
        if (!conv) {
          sendError(ws, 'not_found', 'no such conversation');
          return;
        }
        const before = Number.isInteger(frame.before) ? frame.before : Number.MAX_SAFE_INTEGER;
        const page = history(conv, before, clampLimit(frame.limit));
        send(ws, { type: 'conversation', conversation: summary(conv), ...page });
        return;
      }
      case 'auth':
        sendError(ws, 'bad_frame', 'auth was already received');
        return;
      default:
        sendError(ws, 'bad_frame', `frame type \`${frame.type}\` is not supported by this peer`);
    }
  });

  ws.on('close', () => {
    clearTimeout(deadline);
    agentSockets.delete(ws);
  });
}

// ---------------------------------------------------------------------------------------
// HTTP and upgrade

const wss = new WebSocketServer({
  noServer: true,
  maxPayload: LIMITS.frameBytes,
  perMessageDeflate: false,
  clientTracking: true,
});

const server = http.createServer((req, res) => {
  if (req.url === '/healthz') {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('ok');
    return;
  }
  if (req.url === '/metrics') {
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
    res.end(
      `peer_flushes_total ${stats.flushes}\npeer_writes_total ${stats.writes}\n`
      + `peer_max_batch ${stats.maxBatch}\npeer_connections ${wss.clients.size}\n`);
    return;
  }
  res.writeHead(404, { 'content-type': 'text/plain' });
  res.end('not found');
});

server.on('upgrade', (req, socket, head) => {
  const url = new URL(req.url, 'http://peer');
  const reject = (status) => {
    socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
  };
  if (url.pathname === '/ws/visitor') {
    if (url.searchParams.get('inbox') !== 'default') return reject('404 Not Found');
    let cookieToken = tokenFromCookie(req.headers.cookie);
    if (readToken(cookieToken) === null) {
      // No valid cookie: the handshake response sets one, and the session adopts it if
      // hello brings no token either.
      cookieToken = mintToken(crypto.randomUUID());
      req.fdSetCookie = cookieToken;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      watchHeartbeat(ws);
      visitorSession(ws, cookieToken);
    });
  } else if (url.pathname === '/ws/agent') {
    wss.handleUpgrade(req, socket, head, (ws) => {
      watchHeartbeat(ws);
      agentSession(ws);
    });
  } else {
    reject('404 Not Found');
  }
});

// The fd_visitor cookie on handshakes that carried no valid one.
wss.on('headers', (headers, req) => {
  if (req.fdSetCookie) {
    headers.push(`Set-Cookie: fd_visitor=${req.fdSetCookie}; Path=/; Max-Age=34128000; HttpOnly; SameSite=Lax`);
  }
});

// Heartbeat: ping every 30 s, drop connections that did not answer the previous ping.
const heartbeat = setInterval(() => {
  for (const ws of wss.clients) {
    if (ws.isAlive === false) {
      ws.terminate();
      continue;
    }
    ws.isAlive = false;
    ws.ping();
  }
}, LIMITS.heartbeatMs);
// handleUpgrade with noServer does not emit 'connection'; every session calls this.
function watchHeartbeat(ws) {
  ws.isAlive = true;
  ws.on('pong', () => { ws.isAlive = true; });
}

server.listen(cfg.port, cfg.host, () => {
  const addr = server.address();
  process.stderr.write(`peer: listening on ${addr.address}:${addr.port}\n`);
});

function shutdown() {
  clearInterval(heartbeat);
  for (const ws of wss.clients) ws.close(1001, 'going away');
  server.close();
  flush();
  db.close();
  process.exit(0);
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
