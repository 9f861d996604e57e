//! The conversation list and its search over the engine: the activity index, the
//! places and the word index (`keys` has their layouts), kept right by every write, and
//! the reads of a page (`Store::list`). It decides no rule of the list (that is
//! `listing`) nor what a word is (`search`).
//!
//! Writes. A conversation's record is stored only by [`put_conversation`], which moves
//! its `activity` keys from the place it was listed at (its inbox, `updated_at`, status,
//! assignee before the write) to its place now, and writes that place to `places`, in
//! the same batch, so no write path can leave the list stale. It must not be bypassed:
//! nothing else puts a `conversations` row. [`index_words`] adds a conversation's new words (of a message,
//! or of its contact when the visitor is linked) to `words` and `conv_words` in the
//! write that stores them; a word already indexed for that conversation costs one get
//! and no write. Words are never removed: a visitor linked to another contact (or a
//! contact that changes) leaves the old contact's words behind, so a search may find a
//! conversation by a name it no longer shows (a false positive, never a miss).
//!
//! Reads. A page without a query walks one facet of `activity` (the one the filters
//! name), newest first, from the cursor, in each of the agent's inboxes at once (a merge
//! by place), and loads the records of the page only: its cost is the page, whatever the
//! inbox holds. A query is first looked up term by term in `words` (a prefix scan per
//! inbox), each scan stopped after [`CANDIDATES`] rows. The terms with fewer rows (a
//! rare word, a name) give the candidates, the conversations they all share; the
//! others are common. Then:
//!
//! - few candidates (at most [`SORT_MAX`]): each is checked for the common terms (one
//!   `conv_words` seek per term), its place read from `places` (25 bytes, no record),
//!   filtered and sorted; only the page's records are loaded. The cost is the
//!   candidates, never the inbox.
//! - more candidates, or no term with few rows: the facet is walked as without a
//!   query, keeping the conversations among the candidates (a set in memory) that have
//!   every common term (a seek per term). Matches are dense then, so a page is near;
//!   random reads of many candidates' places would cost more than reading the list in
//!   order. A page spends at most [`WALK_BUDGET`] (a place looked at costs one, each
//!   seek one more); past it, it ends early, possibly short or empty, with a `next`
//!   from the last place looked at, so even common terms that rarely meet cost a
//!   bounded read per page.

use std::collections::{BTreeSet, VecDeque};

use widget_protocol::Status;

use crate::ids::{AgentId, ConversationId};
use crate::listing::{activity, AssigneeFilter, Cursor, ListRequest, Page};
use crate::search::Query;
use crate::store::keys::{self, Facet};
use crate::store::records::ConversationRecord;
use crate::store::{prefix_end, Batch, Kv, Scan, StoreError, Tree};

use super::read::load;

/// The most `words` rows one term's lookup reads before it counts as common.
pub const CANDIDATES: usize = 1000;
/// The most candidates whose places are read and sorted; more are found by a walk.
pub const SORT_MAX: usize = 200;
/// The most reads a page of a walk makes (a place, and each seek for a term).
pub const WALK_BUDGET: usize = 30_000;

/// Where a conversation is listed: what its `activity` keys are made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    inbox: String,
    at: u64,
    status: Status,
    assignee: Option<AgentId>,
}

impl Place {
    pub fn of(conv: &ConversationRecord) -> Place {
        Place {
            inbox: conv.inbox.clone(),
            at: activity(conv.updated_at),
            status: conv.status,
            assignee: conv.assignee.as_ref().map(|a| a.id),
        }
    }

    fn keys(&self, id: ConversationId) -> [Vec<u8>; 4] {
        Facet::of(self.status, self.assignee)
            .map(|f| keys::activity(&keys::activity_prefix(&self.inbox, f), self.at, id))
    }
}

/// Stores `conv` and lists it at its place, moving its keys from `was` (where it was
/// listed before this write; None: a new conversation, or one not listed yet).
pub fn put_conversation(b: &mut Batch, was: Option<&Place>, conv: &ConversationRecord) {
    b.put_json(Tree::Conversations, keys::id(conv.id), conv);
    let now = Place::of(conv);
    if was == Some(&now) {
        return;
    }
    let new = now.keys(conv.id);
    let old = was.map(|p| p.keys(conv.id)).unwrap_or_default();
    for k in old.iter().filter(|k| !new.contains(k)) {
        b.delete(Tree::Activity, k.clone());
    }
    for k in new.into_iter().filter(|k| !old.contains(k)) {
        b.put(Tree::Activity, k, Vec::new());
    }
    b.put(
        Tree::Places,
        keys::id(conv.id),
        keys::place(now.at, now.status, now.assignee),
    );
}

/// Adds `words` to the index of conversation `id` in `inbox`, skipping the ones it has.
pub fn index_words(
    kv: &dyn Kv,
    b: &mut Batch,
    inbox: &str,
    id: ConversationId,
    words: &BTreeSet<String>,
) -> Result<(), StoreError> {
    for w in words {
        let back = keys::conv_word(id, w);
        if kv.get(Tree::ConvWords, &back)?.is_none() {
            b.put(Tree::ConvWords, back, Vec::new());
            b.put(Tree::Words, keys::word(inbox, w, id), Vec::new());
        }
    }
    Ok(())
}

/// The page `req` asks for, across `inboxes`.
pub fn list(kv: &dyn Kv, inboxes: &[String], req: &ListRequest) -> Result<Page, StoreError> {
    let facet = facet(req);
    match &req.query {
        None => walk(kv, inboxes, facet, req, 1, |_| Ok(true)),
        Some(q) => search(kv, inboxes, facet, req, q),
    }
}

/// The facet whose keys are exactly the conversations the filters admit.
fn facet(req: &ListRequest) -> Facet {
    let whose = match req.assignee {
        AssigneeFilter::Anyone => None,
        AssigneeFilter::Nobody => Some(None),
        AssigneeFilter::Agent(id) => Some(Some(id)),
    };
    match (req.status, whose) {
        (None, None) => Facet::All,
        (Some(s), None) => Facet::Status(s),
        (None, Some(a)) => Facet::Assignee(a),
        (Some(s), Some(a)) => Facet::Both(s, a),
    }
}

fn corrupt(tree: Tree) -> StoreError {
    super::read::corrupt(tree, "key")
}

/// One inbox's facet, read newest first (in key order) a chunk at a time.
struct Stream {
    prefix: Vec<u8>,
    /// Reads continue from this key on.
    lower: Vec<u8>,
    end: Option<Vec<u8>>,
    buffered: VecDeque<Cursor>,
    exhausted: bool,
    chunk: usize,
}

/// The most keys one read of a stream takes.
const MAX_CHUNK: usize = 1024;

impl Stream {
    fn new(inbox: &str, facet: Facet, before: Option<Cursor>, chunk: usize) -> Stream {
        let prefix = keys::activity_prefix(inbox, facet);
        let lower = match before {
            Some(c) => after(keys::activity(&prefix, c.at, c.id)),
            None => prefix.clone(),
        };
        Stream {
            end: prefix_end(&prefix),
            prefix,
            lower,
            buffered: VecDeque::new(),
            exhausted: false,
            chunk: chunk.clamp(1, MAX_CHUNK),
        }
    }

    fn head(&mut self, kv: &dyn Kv) -> Result<Option<Cursor>, StoreError> {
        if self.buffered.is_empty() && !self.exhausted {
            let scan = Scan {
                from: &self.lower,
                to: self.end.as_deref(),
                newest_first: false,
                limit: self.chunk,
            };
            let rows = kv.scan(Tree::Activity, scan)?;
            self.exhausted = rows.len() < self.chunk;
            self.chunk = (self.chunk * 2).min(MAX_CHUNK);
            for (k, _) in rows {
                let (at, id) = keys::read_activity(&k, self.prefix.len())
                    .ok_or_else(|| corrupt(Tree::Activity))?;
                self.buffered.push_back(Cursor { at, id });
                self.lower = after(k);
            }
        }
        Ok(self.buffered.front().copied())
    }
}

/// The first key after `k` (keys of one facet have one length).
fn after(mut k: Vec<u8>) -> Vec<u8> {
    k.push(0);
    k
}

/// Walks `facet` of every inbox newest first from the request's cursor, keeping the
/// conversations `keep` accepts, until the page is full or [`WALK_BUDGET`] is spent
/// (each place looked at costs `cost`).
fn walk(
    kv: &dyn Kv,
    inboxes: &[String],
    facet: Facet,
    req: &ListRequest,
    cost: usize,
    mut keep: impl FnMut(ConversationId) -> Result<bool, StoreError>,
) -> Result<Page, StoreError> {
    let want = req.limit + 1;
    let mut streams: Vec<Stream> = inboxes
        .iter()
        .map(|i| Stream::new(i, facet, req.before, want))
        .collect();
    let mut found = Vec::new();
    let mut looked = 0usize;
    loop {
        let mut newest: Option<(usize, Cursor)> = None;
        for (i, s) in streams.iter_mut().enumerate() {
            if let Some(head) = s.head(kv)? {
                if newest.is_none_or(|(_, n)| head > n) {
                    newest = Some((i, head));
                }
            }
        }
        let Some((i, place)) = newest else {
            return Ok(page(found, req.limit, None));
        };
        streams[i].buffered.pop_front();
        looked += cost;
        if keep(place.id)? {
            if let Some(conv) = load(kv, place.id)? {
                found.push((place, conv));
                if found.len() == want {
                    return Ok(page(found, req.limit, None));
                }
            }
        }
        if looked >= WALK_BUDGET {
            return Ok(page(found, req.limit, Some(place)));
        }
    }
}

/// The page of `found` (newest first, at most one more than `limit`); `stopped`: the
/// walk ended early at this place, so the next page starts after it.
fn page(
    mut found: Vec<(Cursor, ConversationRecord)>,
    limit: usize,
    stopped: Option<Cursor>,
) -> Page {
    let next = if found.len() > limit {
        found.truncate(limit);
        found.last().map(|(c, _)| *c)
    } else {
        stopped
    };
    Page {
        conversations: found,
        next,
    }
}

/// Whether conversation `id` has a word beginning with each of `terms`.
fn has_all(kv: &dyn Kv, id: ConversationId, terms: &[String]) -> Result<bool, StoreError> {
    for t in terms {
        if kv
            .scan_prefix(Tree::ConvWords, &keys::conv_word(id, t), 1)?
            .is_empty()
        {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The conversations of `inboxes` with a word beginning with `term`, or None when
/// there are more than [`CANDIDATES`] rows of them.
fn candidates(
    kv: &dyn Kv,
    inboxes: &[String],
    term: &str,
) -> Result<Option<BTreeSet<ConversationId>>, StoreError> {
    let (mut ids, mut rows) = (BTreeSet::new(), 0usize);
    for inbox in inboxes {
        let found = kv.scan_prefix(
            Tree::Words,
            &keys::words_prefix(inbox, term),
            CANDIDATES + 1 - rows,
        )?;
        rows += found.len();
        if rows > CANDIDATES {
            return Ok(None);
        }
        for (k, _) in found {
            ids.insert(keys::read_word_conversation(&k).ok_or_else(|| corrupt(Tree::Words))?);
        }
    }
    Ok(Some(ids))
}

fn search(
    kv: &dyn Kv,
    inboxes: &[String],
    facet: Facet,
    req: &ListRequest,
    query: &Query,
) -> Result<Page, StoreError> {
    let terms = query.terms();
    // The conversations every term with few of them shares; the terms with many.
    let (mut shared, mut common): (Option<BTreeSet<ConversationId>>, Vec<String>) =
        (None, Vec::new());
    for t in terms {
        match candidates(kv, inboxes, t)? {
            Some(ids) => {
                shared = Some(match shared {
                    None => ids,
                    Some(s) => s.intersection(&ids).copied().collect(),
                })
            }
            None => common.push(t.clone()),
        }
    }
    let cost = 1 + common.len();
    let ids = match shared {
        None => return walk(kv, inboxes, facet, req, cost, |id| has_all(kv, id, &common)),
        Some(ids) if ids.len() > SORT_MAX => {
            let keep = |id| Ok(ids.contains(&id) && has_all(kv, id, &common)?);
            return walk(kv, inboxes, facet, req, cost, keep);
        }
        Some(ids) => ids,
    };
    let mut places = Vec::new();
    for id in ids {
        if !has_all(kv, id, &common)? {
            continue;
        }
        let Some(v) = kv.get(Tree::Places, &keys::id(id))? else {
            continue;
        };
        let (at, status, assignee) = keys::read_place(&v).ok_or_else(|| corrupt(Tree::Places))?;
        let place = Cursor { at, id };
        if req.admits(place, status, assignee) {
            places.push(place);
        }
    }
    places.sort_by_key(|p| std::cmp::Reverse(*p));
    let mut found = Vec::new();
    for place in places.into_iter().take(req.limit + 1) {
        if let Some(conv) = load(kv, place.id)? {
            found.push((place, conv));
        }
    }
    Ok(page(found, req.limit, None))
}
