//! Replays the fuzz target's committed seed corpus (`fuzz/corpus/decode_frames/`) through
//! the same check the target runs, so the properties hold on every `cargo test`, without
//! nightly or libFuzzer. Also: every contract example is a seed, deep nesting cannot
//! overflow the stack, and a few thousand mutations of the examples keep the properties.
//!
//! After changing an example in `support/mod.rs`, rewrite its seed with
//! `BLESS_CORPUS=1 cargo test -p widget-protocol --test fuzz_corpus`.

mod support;

use std::path::{Path, PathBuf};

use support::EXAMPLES;
use widget_protocol::fuzzing::check_frame_bytes;
use widget_protocol::{decode, VisitorClient};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/decode_frames")
}

fn corpus() -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(corpus_dir())
        .expect("the corpus directory exists")
        .map(|entry| {
            let path = entry.expect("readable entry").path();
            let bytes = std::fs::read(&path).expect("readable seed");
            (path.display().to_string(), bytes)
        })
        .collect();
    files.sort();
    files
}

/// Runs the check on each input and reports every failure by name, not only the first.
fn check_all(inputs: impl IntoIterator<Item = (String, Vec<u8>)>) -> usize {
    let mut failed = Vec::new();
    let mut n = 0;
    for (name, bytes) in inputs {
        n += 1;
        if std::panic::catch_unwind(|| check_frame_bytes(&bytes)).is_err() {
            failed.push(name);
        }
    }
    assert!(failed.is_empty(), "properties broken by: {failed:#?}");
    n
}

#[test]
fn every_seed_keeps_the_properties() {
    let n = check_all(corpus());
    assert!(n >= 80, "only {n} seeds: is the corpus checked out?");
}

#[test]
fn every_contract_example_is_a_seed() {
    let bless = std::env::var_os("BLESS_CORPUS").is_some();
    for ex in EXAMPLES {
        let path = corpus_dir().join(format!("example-{}.json", ex.name));
        if bless {
            std::fs::write(&path, ex.json).expect("write seed");
            continue;
        }
        let seed = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (run with BLESS_CORPUS=1)", path.display()));
        assert_eq!(
            seed,
            ex.json,
            "{} is stale (run with BLESS_CORPUS=1)",
            path.display()
        );
    }
}

/// serde_json refuses more than 128 levels of nesting, so decoding is bounded however
/// deep the input. Proven on a thread with a small stack (1 MiB, half the default for
/// test threads) and inputs a thousand times deeper than any stack could recurse.
#[test]
fn deep_nesting_cannot_overflow_the_stack() {
    let worker = std::thread::Builder::new()
        .name("small-stack".into())
        .stack_size(1024 * 1024)
        .spawn(|| {
            let depth = 1_000_000;
            let inputs = [
                "[".repeat(depth),
                "{\"a\":".repeat(depth),
                format!("{}{}", "[".repeat(depth), "]".repeat(depth)),
                format!(
                    r#"{{"type":"send","client_msg_id":"a","text":"x","extra":{}{}}}"#,
                    "[".repeat(depth),
                    "]".repeat(depth)
                ),
                format!(r#"{{"type":"hello","page":{}}}"#, "{\"url\":".repeat(depth)),
            ];
            for input in &inputs {
                check_frame_bytes(input.as_bytes());
                assert!(decode::<VisitorClient>(input).is_err());
            }
            // Just under the limit, an unknown field's nesting is fine.
            let ok = format!(
                r#"{{"type":"send","client_msg_id":"a","text":"x","extra":{}{}}}"#,
                "[".repeat(100),
                "]".repeat(100)
            );
            assert!(decode::<VisitorClient>(&ok).is_ok());
        })
        .expect("spawn");
    worker.join().expect("no stack overflow, no panic");
}

/// A small deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Every truncation of every example, and random byte edits biased towards JSON's own
/// characters: thousands of malformed, mistyped and oddly valid frames per run.
#[test]
fn mutated_examples_keep_the_properties() {
    const ALPHABET: &[u8] = b"{}[]\":,0123456789-+.eE \\u\x00\x1f\x7f\xff\xc3tfnul";
    let mut rng = Rng(0x5eed_f00d_cafe_d00d);
    let mut inputs = Vec::new();
    for ex in EXAMPLES {
        let base = ex.json.as_bytes();
        let step = (base.len() / 40).max(1);
        for cut in (0..base.len()).step_by(step) {
            inputs.push((format!("{} cut at {cut}", ex.name), base[..cut].to_vec()));
        }
        for round in 0..60 {
            let mut bytes = base.to_vec();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(bytes.len());
                match rng.below(3) {
                    0 => bytes[at] = ALPHABET[rng.below(ALPHABET.len())],
                    1 => bytes.insert(at, ALPHABET[rng.below(ALPHABET.len())]),
                    _ => {
                        bytes.remove(at);
                    }
                }
            }
            inputs.push((format!("{} mutation {round}", ex.name), bytes));
        }
    }
    let n = check_all(inputs);
    assert!(n > 3000, "{n}");
}
