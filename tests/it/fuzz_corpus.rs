//! Replays the committed fuzz seed corpus through the server's side of frame decoding
//! (the `server_frames` fuzz target runs the same check on generated inputs).

#[test]
fn the_seed_corpus_passes_the_server_frame_checks() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("widget-protocol/fuzz/corpus/decode_frames");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("the corpus directory") {
        let path = entry.expect("entry").path();
        let bytes = std::fs::read(&path).expect("seed");
        let outcome = std::panic::catch_unwind(|| frontdesk::fuzzing::check_client_bytes(&bytes));
        assert!(outcome.is_ok(), "seed {} broke a property", path.display());
        n += 1;
    }
    assert!(n >= 50, "only {n} seeds in {}", dir.display());
}
