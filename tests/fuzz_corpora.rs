//! Replays every committed fuzz corpus (`fuzz/corpus/<target>/*`) through the same target
//! functions the fuzzer runs (`fuzz/targets.rs`), on stable, so `cargo test` keeps every seed
//! and every minimised crash passing. A target without a corpus directory, or a corpus
//! directory without a target, fails the test.

#[path = "../fuzz/targets.rs"]
mod targets;

use std::fs;
use std::path::Path;

#[test]
fn every_corpus_file_passes_its_target() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let mut directories: Vec<String> =
        fs::read_dir(&corpus).unwrap().map(|entry| entry.unwrap().file_name().into_string().unwrap()).collect();
    directories.sort();
    let mut names: Vec<&str> = targets::TARGETS.iter().map(|(name, _)| *name).collect();
    names.sort();
    assert_eq!(directories, names, "one corpus directory per target");
    for (name, target) in targets::TARGETS {
        let files: Vec<_> = fs::read_dir(corpus.join(name)).unwrap().map(|entry| entry.unwrap().path()).collect();
        assert!(files.len() >= 10, "{name}: only {} seeds", files.len());
        for file in files {
            let data = fs::read(&file).unwrap();
            if std::panic::catch_unwind(|| target(&data)).is_err() {
                panic!("{name} fails on {}", file.display());
            }
        }
    }
}
