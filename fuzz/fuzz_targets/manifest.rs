//! Fuzzes whole-manifest translation in both directions: no input may panic.
#![no_main]

use csi_migrate_translate::Translator;
use csi_migrate_translate::manifest::{Direction, translate_manifest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(object) = serde_json::from_slice::<serde_json::Value>(data) {
        let translator = Translator::new();
        let _ = translate_manifest(&translator, &object, Direction::ToCsi);
        let _ = translate_manifest(&translator, &object, Direction::ToInTree);
    }
});
