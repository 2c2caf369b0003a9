//! The `translate --jsonl` request/response protocol: one JSON request per line in,
//! one JSON response per line out.

use std::io::Write;

use k8s_openapi::api::core::v1::{PersistentVolume, Volume};
use k8s_openapi::api::storage::v1::StorageClass;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::Translator;

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    /// StorageClass → CSI StorageClass; the plugin is taken from `provisioner`.
    ScToCsi,
    /// In-tree PersistentVolume → CSI PersistentVolume.
    PvToCsi,
    /// CSI PersistentVolume → in-tree PersistentVolume.
    PvToIntree,
    /// Pod `Volume` → CSI PersistentVolume.
    InlineToCsi,
}

/// One request line.
#[derive(Debug, Deserialize)]
struct Request<'a> {
    op: Operation,
    #[serde(borrow)]
    object: &'a RawValue,
    #[serde(default, rename = "podNamespace")]
    pod_namespace: Option<String>,
}

#[derive(Serialize)]
struct Failure<'a> {
    ok: bool,
    error: &'a str,
}

/// Answers one request line, appending the response (without a newline) to `out`.
/// Never fails: a malformed or untranslatable request gets `{"ok":false,"error":…}`.
pub fn respond(translator: &Translator, line: &str, out: &mut Vec<u8>) {
    let start = out.len();
    if let Err(message) = respond_ok(translator, line, out) {
        out.truncate(start);
        // Serializing a struct of a bool and a str into a Vec cannot fail.
        let _ = serde_json::to_writer(
            &mut *out,
            &Failure {
                ok: false,
                error: &message,
            },
        );
    }
}

fn respond_ok(translator: &Translator, line: &str, out: &mut Vec<u8>) -> Result<(), String> {
    let request: Request =
        serde_json::from_str(line).map_err(|e| format!("malformed request: {e}"))?;
    let object = request.object.get();
    let parse_error =
        |what: &str, e: serde_json::Error| format!("object is not a valid {what}: {e}");
    out.extend_from_slice(br#"{"ok":true,"object":"#);
    let written = match request.op {
        Operation::ScToCsi => {
            let sc: StorageClass =
                serde_json::from_str(object).map_err(|e| parse_error("StorageClass", e))?;
            let csi = translator
                .storage_class_to_csi(&sc.provisioner, &sc)
                .map_err(|e| e.to_string())?;
            serde_json::to_writer(&mut *out, &csi)
        }
        Operation::PvToCsi | Operation::PvToIntree => {
            let pv: PersistentVolume =
                serde_json::from_str(object).map_err(|e| parse_error("PersistentVolume", e))?;
            let translated = if request.op == Operation::PvToCsi {
                translator.pv_to_csi(&pv)
            } else {
                translator.pv_to_in_tree(&pv)
            }
            .map_err(|e| e.to_string())?;
            serde_json::to_writer(&mut *out, &translated)
        }
        Operation::InlineToCsi => {
            let volume: Volume =
                serde_json::from_str(object).map_err(|e| parse_error("Volume", e))?;
            let namespace = request.pod_namespace.as_deref().unwrap_or_default();
            let pv = translator
                .inline_to_csi(&volume, namespace)
                .map_err(|e| e.to_string())?;
            serde_json::to_writer(&mut *out, &pv)
        }
    };
    written.map_err(|e| format!("cannot serialize the result: {e}"))?;
    out.write_all(b"}").map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(line: &str) -> serde_json::Value {
        let mut out = Vec::new();
        respond(&Translator::new(), line, &mut out);
        serde_json::from_slice(&out)
            .unwrap_or_else(|e| panic!("response is not JSON ({e}): {out:?}"))
    }

    #[test]
    fn translates_a_pv_request() {
        let r = answer(
            r#"{"op":"pv_to_csi","object":{"metadata":{"name":"p"},"spec":{"cinder":{"volumeID":"v1"}}}}"#,
        );
        assert_eq!(r["ok"], true);
        assert_eq!(r["object"]["spec"]["csi"]["volumeHandle"], "v1");
        assert_eq!(r["object"]["kind"], "PersistentVolume");
    }

    #[test]
    fn answers_malformed_lines_with_ok_false() {
        for line in [
            "",
            "{",
            "[]",
            r#"{"op":"nope","object":{}}"#,
            r#"{"op":"pv_to_csi"}"#,
        ] {
            let r = answer(line);
            assert_eq!(r["ok"], false, "{line}");
            assert!(r["error"].as_str().is_some_and(|e| !e.is_empty()), "{line}");
        }
    }

    #[test]
    fn reports_translation_errors() {
        let r = answer(
            r#"{"op":"pv_to_csi","object":{"metadata":{"name":"p"},"spec":{"nfs":{"server":"s","path":"/"}}}}"#,
        );
        assert_eq!(r["ok"], false);
        assert_eq!(
            r["error"],
            "could not find in-tree plugin translation logic for \"p\""
        );
    }

    #[test]
    fn inline_request_uses_pod_namespace() {
        let r = answer(
            r#"{"op":"inline_to_csi","podNamespace":"team-a","object":{"name":"v","azureFile":{"secretName":"s","shareName":"sh"}}}"#,
        );
        assert_eq!(r["object"]["spec"]["csi"]["volumeHandle"], "#s#sh#v#team-a");
        assert_eq!(r["object"]["spec"]["volumeMode"], "Filesystem");
    }
}
