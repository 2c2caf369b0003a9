//! The `admission.k8s.io/v1` AdmissionReview wire format: parsing requests, building responses.
//!
//! Own serde types rather than kube's: only the fields the webhook reads are decoded, the
//! object stays raw JSON until a rule needs it, and unknown fields are ignored.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// The only AdmissionReview `apiVersion` the webhook speaks.
pub const ADMISSION_API_VERSION: &str = "admission.k8s.io/v1";

/// Why an HTTP request is not a usable AdmissionReview (the server answers 400).
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    /// The request body is empty.
    #[error("received an empty request body; expected an admission.k8s.io/v1 AdmissionReview")]
    EmptyBody,
    /// The `Content-Type` header is missing or is not JSON.
    #[error("invalid Content-Type {0:?}; expected application/json")]
    ContentType(String),
    /// The body is not JSON, or its fields have the wrong types.
    #[error("request body is not a valid AdmissionReview: {}", value_free(.0))]
    Json(#[from] serde_json::Error),
    /// The body is JSON but not an `admission.k8s.io/v1` `AdmissionReview`.
    #[error(
        "expected apiVersion admission.k8s.io/v1 and kind AdmissionReview, got apiVersion {api_version:?} and kind {kind:?}"
    )]
    NotAdmissionReview {
        /// The `apiVersion` that was sent.
        api_version: String,
        /// The `kind` that was sent.
        kind: String,
    },
    /// The AdmissionReview has no `request`.
    #[error("AdmissionReview has no request")]
    MissingRequest,
    /// The request's `uid` is empty (the response could not be matched to it).
    #[error("AdmissionReview request has an empty uid")]
    MissingUid,
    /// A CREATE or UPDATE request carries no `object`.
    #[error("{operation} request for {kind} has no object")]
    MissingObject {
        /// The request's operation.
        operation: String,
        /// The request's kind.
        kind: String,
    },
    /// The `object` (or `oldObject`) does not decode as the kind the request names.
    #[error("{field} is not a valid {kind}: {} (at {path})", value_free(.source))]
    Object {
        /// `object` or `oldObject`.
        field: &'static str,
        /// The request's kind.
        kind: String,
        /// Where decoding failed, e.g. `object.spec.volumes[0].name` (`object` for the top).
        path: String,
        /// The decoding error.
        source: serde_json::Error,
    },
}

impl ReviewError {
    /// The error as text (the same as `Display`). It never quotes the request's content:
    /// JSON errors can cite the offending value, which may be a secret, so only the error
    /// class, what was expected and where (field path, line and column) are kept. Used in
    /// logs and in the 400 answer to clients.
    pub fn summary(&self) -> String {
        self.to_string()
    }
}

/// A serde_json error without the value it may quote: `invalid type: string "hunter2",
/// expected a sequence at line 1 column 9` becomes `invalid type, expected a sequence, at
/// line 1 column 9`.
fn value_free(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let text = e.to_string();
    // Drop serde_json's own " at line L column C" suffix; the position is added below.
    let text = match text.rfind(" at line ") {
        Some(i) if e.line() > 0 => &text[..i],
        _ => text.as_str(),
    };
    let mut out = match e.classify() {
        // serde_json's own fixed texts ("expected value", "trailing characters", ...).
        Category::Syntax | Category::Eof => text.to_owned(),
        Category::Io => "I/O error".to_owned(),
        // Data errors quote the input ("invalid type: string \"hunter2\""): keep serde's
        // fixed prefix and its "expected X" (X names the type being decoded), nothing else.
        Category::Data => {
            const PREFIXES: [&str; 7] = [
                "invalid type",
                "invalid value",
                "invalid length",
                "unknown variant",
                "unknown field",
                "missing field",
                "duplicate field",
            ];
            let mut out = PREFIXES
                .iter()
                .find(|p| text.starts_with(*p))
                .map_or("invalid data", |p| p)
                .to_owned();
            // A missing or duplicate field's name comes from the schema, not the input.
            for prefix in ["missing field `", "duplicate field `"] {
                if let Some(field) = text
                    .strip_prefix(prefix)
                    .and_then(|rest| rest.strip_suffix('`'))
                    .filter(|f| !f.contains('`'))
                {
                    out.push_str(&format!(" `{field}`"));
                }
            }
            if let Some(expected) = text
                .rfind(", expected ")
                .map(|i| &text[i + 2..])
                .filter(|x| !x.contains('"'))
            {
                out.push_str(", ");
                out.push_str(expected);
            }
            out
        }
    };
    if e.line() > 0 {
        out.push_str(&format!(", at line {} column {}", e.line(), e.column()));
    }
    out
}

/// Group, version and kind of the object under review.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct GroupVersionKind {
    /// API group; empty for the core group.
    #[serde(default)]
    pub group: String,
    /// API version.
    #[serde(default)]
    pub version: String,
    /// Kind, e.g. `StorageClass`.
    #[serde(default)]
    pub kind: String,
}

/// The part of an AdmissionReview request the webhook reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionRequest<'a> {
    /// Identifies this review; echoed in the response.
    #[serde(default)]
    pub uid: String,
    /// The kind of the object under review.
    #[serde(default)]
    pub kind: GroupVersionKind,
    /// Subresource, e.g. `status` or `scale`; empty for the main resource.
    #[serde(default)]
    pub sub_resource: Option<String>,
    /// Object name (may be empty on CREATE with `generateName`).
    #[serde(default)]
    pub name: Option<String>,
    /// Namespace; absent for cluster-scoped objects.
    #[serde(default)]
    pub namespace: Option<String>,
    /// CREATE, UPDATE, DELETE or CONNECT.
    #[serde(default)]
    pub operation: String,
    /// The new object (absent on DELETE).
    #[serde(default, borrow)]
    pub object: Option<&'a RawValue>,
    /// The existing object (UPDATE and DELETE).
    #[serde(default, borrow)]
    pub old_object: Option<&'a RawValue>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AdmissionReviewIn<'a> {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    #[serde(default, borrow)]
    request: Option<AdmissionRequest<'a>>,
}

/// Parses an AdmissionReview body, checking its envelope.
pub fn parse_review(body: &[u8]) -> Result<AdmissionRequest<'_>, ReviewError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ReviewError::EmptyBody);
    }
    let review: AdmissionReviewIn<'_> = serde_json::from_slice(body)?;
    if review.api_version != ADMISSION_API_VERSION || review.kind != "AdmissionReview" {
        return Err(ReviewError::NotAdmissionReview {
            api_version: review.api_version,
            kind: review.kind,
        });
    }
    let request = review.request.ok_or(ReviewError::MissingRequest)?;
    if request.uid.is_empty() {
        return Err(ReviewError::MissingUid);
    }
    Ok(request)
}

/// Checks a `Content-Type` header value: JSON, parameters such as `charset` allowed.
pub fn check_content_type(value: Option<&str>) -> Result<(), ReviewError> {
    let value = value.unwrap_or("");
    let essence = value.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        Err(ReviewError::ContentType(value.to_owned()))
    }
}

/// The `status` of a denied review.
#[derive(Debug, Clone, Serialize)]
pub struct ResponseStatus {
    /// Always `Failure`.
    pub status: &'static str,
    /// What the user sees after `admission webhook "…" denied the request: `.
    pub message: String,
    /// `Forbidden`.
    pub reason: &'static str,
    /// 403.
    pub code: u16,
}

/// The webhook's answer to one review.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionResponse {
    /// The request's uid.
    pub uid: String,
    /// Whether the request is admitted.
    pub allowed: bool,
    /// Why it was denied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<ResponseStatus>,
    /// Warnings shown to the user (kubectl prints them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl AdmissionResponse {
    /// An admitting response without warnings.
    pub fn allow(uid: &str) -> Self {
        AdmissionResponse {
            uid: uid.to_owned(),
            allowed: true,
            status: None,
            warnings: Vec::new(),
        }
    }

    /// A denying response with a message.
    pub fn deny(uid: &str, message: String) -> Self {
        AdmissionResponse {
            uid: uid.to_owned(),
            allowed: false,
            status: Some(ResponseStatus {
                status: "Failure",
                message,
                reason: "Forbidden",
                code: 403,
            }),
            warnings: Vec::new(),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AdmissionReviewOut<'a> {
    api_version: &'static str,
    kind: &'static str,
    response: &'a AdmissionResponse,
}

/// Serializes the AdmissionReview that carries `response`.
pub fn response_body(response: &AdmissionResponse) -> Vec<u8> {
    let review = AdmissionReviewOut {
        api_version: ADMISSION_API_VERSION,
        kind: "AdmissionReview",
        response,
    };
    // Serializing plain strings, bools and vectors into memory cannot fail.
    serde_json::to_vec(&review).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn review(request: &str) -> String {
        format!(
            r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{request}}}"#
        )
    }

    #[test]
    fn parses_a_request_and_keeps_the_object_raw() {
        let body = review(
            r#"{"uid":"u1","kind":{"group":"","version":"v1","kind":"Pod"},"namespace":"ns","operation":"CREATE",
                "userInfo":{"username":"x"},"object":{"apiVersion":"v1","kind":"Pod"},"oldObject":null}"#,
        );
        let r = parse_review(body.as_bytes()).unwrap();
        assert_eq!(r.uid, "u1");
        assert_eq!(r.kind.kind, "Pod");
        assert_eq!(r.namespace.as_deref(), Some("ns"));
        assert_eq!(
            r.object.unwrap().get(),
            r#"{"apiVersion":"v1","kind":"Pod"}"#
        );
        assert!(r.old_object.is_none());
    }

    #[test]
    fn malformed_bodies() {
        let cases: &[(&str, &str)] = &[
            ("", "empty request body"),
            ("  \n", "empty request body"),
            ("{", "not a valid AdmissionReview"),
            ("[1,2]", "not a valid AdmissionReview"),
            (
                r#"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"x"}}"#,
                "admission.k8s.io/v1beta1",
            ),
            (
                r#"{"apiVersion":"admission.k8s.io/v1","kind":"Pod"}"#,
                "kind \"Pod\"",
            ),
            (
                r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#,
                "has no request",
            ),
            (
                r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":""}}"#,
                "empty uid",
            ),
            (
                r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":5}}"#,
                "not a valid AdmissionReview",
            ),
        ];
        for (body, needle) in cases {
            let err = parse_review(body.as_bytes()).unwrap_err().to_string();
            assert!(err.contains(needle), "{body:?}: {err}");
        }
    }

    #[test]
    fn error_texts_never_quote_values() {
        const SECRET: &str = "TOPSECRETVALUE";
        // Envelope errors.
        let bodies = [
            format!(
                r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{{"uid":["{SECRET}"]}}}}"#
            ),
            format!(
                r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{{"uid":"u","object":{{"a":"{SECRET}"}}"#
            ),
            format!(
                r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":"{SECRET}"}}"#
            ),
            format!(
                r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{{"uid":"u","kind":{{"group":{{"{SECRET}":1}}}}}}}}"#
            ),
        ];
        for body in &bodies {
            let err = parse_review(body.as_bytes()).unwrap_err();
            let text = err.to_string();
            assert!(!text.contains(SECRET), "{text}");
            assert_eq!(err.summary(), text);
            assert!(text.contains("at line 1 column"), "{text}");
        }
        let err = parse_review(bodies[0].as_bytes()).unwrap_err().to_string();
        assert!(err.contains("invalid type, expected a string"), "{err}");
        // Object errors carry the path, never the value.
        let object: Result<k8s_openapi::api::core::v1::Pod, _> = {
            let raw = format!(r#"{{"spec":{{"volumes":"{SECRET}"}}}}"#);
            let mut de = serde_json::Deserializer::from_str(&raw);
            serde_path_to_error::deserialize(&mut de)
        };
        let error = object.unwrap_err();
        let err = ReviewError::Object {
            field: "object",
            kind: "Pod".into(),
            path: format!("object.{}", error.path()),
            source: error.into_inner(),
        };
        let text = err.to_string();
        assert!(!text.contains(SECRET), "{text}");
        assert!(
            text.starts_with("object is not a valid Pod: invalid type, expected a sequence"),
            "{text}"
        );
        assert!(text.ends_with("(at object.spec.volumes)"), "{text}");
    }

    #[test]
    fn content_types() {
        assert!(check_content_type(Some("application/json")).is_ok());
        assert!(check_content_type(Some("application/json; charset=utf-8")).is_ok());
        assert!(check_content_type(Some("Application/JSON")).is_ok());
        assert!(check_content_type(Some("text/plain")).is_err());
        assert!(check_content_type(Some("application/yaml")).is_err());
        assert!(check_content_type(None).is_err());
    }

    #[test]
    fn response_wire_shape() {
        let allow: serde_json::Value =
            serde_json::from_slice(&response_body(&AdmissionResponse::allow("u"))).unwrap();
        assert_eq!(
            allow,
            serde_json::json!({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"u","allowed":true}})
        );
        let mut deny = AdmissionResponse::deny("u", "no".into());
        deny.warnings.push("careful".into());
        let deny: serde_json::Value = serde_json::from_slice(&response_body(&deny)).unwrap();
        assert_eq!(deny["response"]["allowed"], false);
        assert_eq!(deny["response"]["status"]["message"], "no");
        assert_eq!(deny["response"]["status"]["code"], 403);
        assert_eq!(deny["response"]["warnings"][0], "careful");
    }
}
