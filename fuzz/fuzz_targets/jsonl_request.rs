//! Fuzzes the `translate --jsonl` request parser and every translator behind it: no input may panic.
#![no_main]

use csi_migrate_translate::{Translator, jsonl};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(line) = std::str::from_utf8(data) {
        let mut out = Vec::new();
        jsonl::respond(&Translator::new(), line, &mut out);
        // Every answer is one JSON object.
        let answer: serde_json::Value = serde_json::from_slice(&out).expect("answer is JSON");
        assert!(answer.get("ok").is_some());
    }
});
