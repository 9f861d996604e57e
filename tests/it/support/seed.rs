//! The seed of a randomized test: `FRONTDESK_SEED`, else a fresh one, printed at the
//! start and again, with the command that replays it, when the test fails.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The test's random generator, and a guard that prints the seed if the test fails
/// while it is alive.
pub fn rng(test: &'static str) -> (StdRng, Replay) {
    let seed = std::env::var("FRONTDESK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::thread_rng().gen());
    eprintln!("{test}: FRONTDESK_SEED={seed}");
    (StdRng::seed_from_u64(seed), Replay { test, seed })
}

pub struct Replay {
    test: &'static str,
    seed: u64,
}

impl Drop for Replay {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "{} failed; replay with FRONTDESK_SEED={} cargo test --test it {}",
                self.test, self.seed, self.test
            );
        }
    }
}

/// One of `items`, chosen by `rng`.
pub fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    &items[rng.gen_range(0..items.len())]
}
