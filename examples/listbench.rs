//! What the conversation list and its search cost in the store, and what their indexes
//! add to each write: `cargo run --release --example listbench -- [SIZES] [--quick]`.
//!
//! For each size (default `10000,100000`; `--quick`: `2000`) it seeds a fresh store in a
//! temporary directory directly through the `Store` trait, as the server would: one
//! conversation per visitor with a first message drawn from a small vocabulary (the
//! word "order" in half of them and "urgent" in the other half, "zebrafish" in one in
//! 10,000, a number each), a tenth of the
//! visitors linked to a named contact, statuses (60 % open, 30 % pending, 10 %
//! resolved) and every twentieth conversation assigned to one agent. Then it times
//! `Store::list` for the queries of BENCHMARKS.md (the store's read only: no summaries,
//! no socket), and counts what the engine is given per message of a follow-up reply in
//! an existing conversation, by tree.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use widget_protocol::{CaptureWhen, Status};

use frontdesk::contacts::{Link, Whom};
use frontdesk::conversations::{AgentReply, FirstMessagePlan, VisitorSend, Workflow};
use frontdesk::ids::{AgentId, ConversationId, VisitorId};
use frontdesk::listing::{AssigneeFilter, Cursor, ListRequest};
use frontdesk::search::Query;
use frontdesk::store::records::AssigneeRecord;
use frontdesk::store::{Batch, Kv, KvStore, Rows, Scan, Store, StoreError, Tree, Writer};

const WORDS: [&str; 24] = [
    "hello",
    "price",
    "shipping",
    "invoice",
    "account",
    "password",
    "delivery",
    "return",
    "broken",
    "help",
    "please",
    "thanks",
    "question",
    "payment",
    "card",
    "discount",
    "size",
    "color",
    "email",
    "login",
    "cancel",
    "subscription",
    "warranty",
    "address",
];
const FIRST: [&str; 10] = [
    "Ada", "Grace", "Alan", "Jörg", "Maja", "Linus", "Edsger", "Barbara", "Donald", "Frances",
];
const LAST: [&str; 10] = [
    "Lovelace", "Hopper", "Turing", "Müller", "Berg", "Torvalds", "Dijkstra", "Liskov", "Knuth",
    "Allen",
];

/// The engine, counting what each tree is given.
struct Counting {
    inner: Arc<dyn Kv>,
    /// Per tree: puts and deletes, and the bytes of their keys and values.
    counts: Mutex<BTreeMap<&'static str, (u64, u64)>>,
}

impl Kv for Counting {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get(tree, key)
    }
    fn scan(&self, tree: Tree, scan: Scan<'_>) -> Result<Rows, StoreError> {
        self.inner.scan(tree, scan)
    }
    fn apply(&self, batch: &Batch) -> Result<(), StoreError> {
        if let Ok(mut counts) = self.counts.lock() {
            for (tree, k, v) in &batch.ops {
                let c = counts.entry(tree.name()).or_default();
                c.0 += 1;
                c.1 += (k.len() + v.as_ref().map_or(0, Vec::len)) as u64;
            }
        }
        self.inner.apply(batch)
    }
    fn flush(&self) -> Result<(), StoreError> {
        self.inner.flush()
    }
}

/// A small deterministic generator (no dependency, same data every run).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

fn first_message(i: u64) -> String {
    let mut r = Lcg(i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut words: Vec<String> = (0..6)
        .map(|_| WORDS[r.below(WORDS.len() as u64) as usize].to_string())
        .collect();
    if i % 2 == 0 {
        words.push("order".into());
    } else {
        words.push("urgent".into());
    }
    if i % 10_000 == 77 {
        words.push("zebrafish".into());
    }
    words.push(format!("#{}", 100_000 + i));
    words.join(" ")
}

fn send(i: u64, visitor: VisitorId) -> VisitorSend {
    VisitorSend {
        visitor,
        inbox: "default".into(),
        client_msg_id: format!("c{i}"),
        text: first_message(i),
        page: None,
        now: 1_700_000_000_000 + i as i64,
        plan: FirstMessagePlan {
            when: CaptureWhen::Never,
            delay_ms: 0,
            prompt_text: String::new(),
            away: None,
        },
    }
}

async fn seed(store: &KvStore, n: u64, agent: AgentId) -> Result<Vec<ConversationId>, String> {
    let ids = stream::iter(0..n)
        .map(|i| async move {
            let visitor = VisitorId::generate();
            let appended = store.append_visitor(send(i, visitor)).await?;
            let id = appended.conversation.id;
            if i % 10 == 3 {
                let (f, l) = (FIRST[(i / 10 % 10) as usize], LAST[(i / 100 % 10) as usize]);
                let how = Link::Create {
                    first_name: f.into(),
                    last_name: l.into(),
                };
                let email = format!("{}.{}{i}@example.com", f.to_lowercase(), l.to_lowercase());
                store
                    .link_contact(Whom::Conversation(id), email, how, 0)
                    .await?;
            }
            let status = match i % 10 {
                0..=5 => Status::Open,
                6..=8 => Status::Pending,
                _ => Status::Resolved,
            };
            if status != Status::Open {
                store.set_workflow(id, Workflow::Status(status)).await?;
            }
            if i % 20 == 1 {
                let who = AssigneeRecord {
                    id: agent,
                    name: "Ann".into(),
                };
                store.set_workflow(id, Workflow::Assign(Some(who))).await?;
            }
            Ok::<_, frontdesk::error::Error>(id)
        })
        .buffer_unordered(512)
        .collect::<Vec<_>>()
        .await;
    ids.into_iter()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())
}

fn request(query: Option<&str>, status: Option<Status>, assignee: AssigneeFilter) -> ListRequest {
    ListRequest {
        status,
        assignee,
        query: query.and_then(|q| Query::parse(q).ok().flatten()),
        before: None,
        limit: 50,
    }
}

/// Median and 99th percentile of `runs` lists of `req` (after one warm-up), the page's
/// size, and its next cursor.
fn time(
    store: &KvStore,
    req: &ListRequest,
    runs: usize,
) -> (Duration, Duration, usize, Option<Cursor>) {
    let inboxes = ["default".to_string()];
    let first = store.list(&inboxes, req).ok();
    let mut took: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            let _ = store.list(&inboxes, req);
            t.elapsed()
        })
        .collect();
    took.sort();
    let p = |q: f64| took[((took.len() - 1) as f64 * q).round() as usize];
    let (len, next) = first.map_or((0, None), |p| (p.conversations.len(), p.next));
    (p(0.5), p(0.99), len, next)
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

async fn bench(n: u64, runs: usize) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let (kv, wal) = frontdesk::store::open(dir.path()).map_err(|e| e.to_string())?;
    let counting = Arc::new(Counting {
        inner: kv,
        counts: Mutex::new(BTreeMap::new()),
    });
    let kv: Arc<dyn Kv> = counting.clone();
    let (writer, thread) = Writer::start(kv.clone(), wal, Box::new(|_| {}));
    let store = KvStore::new(kv, writer);
    let agent = AgentId::generate();

    let started = Instant::now();
    let ids = seed(&store, n, agent).await?;
    let seeded = started.elapsed();
    println!(
        "\n### {n} conversations (seeded in {:.1} s)\n",
        seeded.as_secs_f64()
    );
    println!("| list | conversations on the page | p50 ms | p99 ms |");
    println!("| --- | --- | --- | --- |");
    let me = AssigneeFilter::Agent(agent);
    let any = AssigneeFilter::Anyone;
    let cases: Vec<(&str, ListRequest)> = vec![
        (
            "no query, no filter (ready's page)",
            request(None, None, any),
        ),
        ("status pending", request(None, Some(Status::Pending), any)),
        (
            "status open, assignee me",
            request(None, Some(Status::Open), me),
        ),
        ("assignee none", request(None, None, AssigneeFilter::Nobody)),
        (
            "common word `order` (1 in 2)",
            request(Some("order"), None, any),
        ),
        ("common prefix `p` (most)", request(Some("p"), None, any)),
        (
            "rare word `zebrafish` (1 in 10,000)",
            request(Some("zebrafish"), None, any),
        ),
        (
            "a last name `lovelace` (1 in 100)",
            request(Some("lovelace"), None, any),
        ),
        (
            "a full name `ada lovelace`",
            request(Some("ada lovelace"), None, any),
        ),
        (
            "an email prefix `ada.lovelace3@`",
            request(Some("ada.lovelace3@"), None, any),
        ),
        (
            "`order` with status resolved, assignee me",
            request(Some("order"), Some(Status::Resolved), me),
        ),
        (
            "two common words that never meet `order urgent`",
            request(Some("order urgent"), None, any),
        ),
        (
            "a word and a number `order #100002`",
            request(Some("order 100002"), None, any),
        ),
    ];
    for (what, req) in &cases {
        let (p50, p99, len, next) = time(&store, req, runs);
        println!("| {what} | {len} | {} | {} |", ms(p50), ms(p99));
        if what.starts_with("no query") || what.starts_with("common word") {
            let second = ListRequest {
                before: next,
                ..req.clone()
            };
            let (p50, p99, len, _) = time(&store, &second, runs);
            println!(
                "| {what}, second page | {len} | {} | {} |",
                ms(p50),
                ms(p99)
            );
        }
    }

    // A follow-up reply in an existing conversation: what the engine is given.
    if let Ok(mut c) = counting.counts.lock() {
        c.clear();
    }
    let replies = 1000.min(ids.len());
    for (i, id) in ids.iter().take(replies).enumerate() {
        store
            .append_agent(AgentReply {
                conversation: *id,
                agent_name: "Ann".into(),
                client_msg_id: format!("r{i}"),
                text: "Thanks, your order ships tomorrow with tracking".into(),
                now: 1_800_000_000_000 + i as i64,
                visitor_online: true,
                follow_up_delay_ms: None,
            })
            .await
            .map_err(|e| e.to_string())?;
    }
    println!("\nPer agent reply (\"Thanks, your order ships tomorrow with tracking\", {replies} replies):\n");
    println!("| tree | puts and deletes | bytes (keys and values) |");
    println!("| --- | --- | --- |");
    let counts = counting
        .counts
        .lock()
        .map(|c| c.clone())
        .unwrap_or_default();
    let (mut all_ops, mut all_bytes, mut index_ops, mut index_bytes) = (0, 0, 0, 0);
    for (tree, (ops, bytes)) in &counts {
        let (ops, bytes) = (*ops as f64 / replies as f64, *bytes as f64 / replies as f64);
        println!("| {tree} | {ops:.1} | {bytes:.0} |");
        all_ops += ops as u64;
        all_bytes += bytes as u64;
        if ["activity", "words", "conv_words", "places"].contains(tree) {
            index_ops += ops as u64;
            index_bytes += bytes as u64;
        }
    }
    println!("| all | {all_ops} | {all_bytes} |");
    println!("\nThe indexes' share: {index_ops} of {all_ops} ops, {index_bytes} of {all_bytes} bytes per reply.");
    drop(store);
    let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    Ok(())
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let sizes: Vec<u64> = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .map(|s| s.split(',').filter_map(|n| n.parse().ok()).collect())
        .unwrap_or_else(|| {
            if quick {
                vec![2000]
            } else {
                vec![10_000, 100_000]
            }
        });
    let runs = if quick { 5 } else { 50 };
    for n in sizes {
        if let Err(e) = bench(n, runs).await {
            eprintln!("listbench: {e}");
            std::process::exit(1);
        }
    }
}
