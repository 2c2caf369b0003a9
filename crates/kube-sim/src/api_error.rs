//! API errors as the real API server reports them: an HTTP code and a `Status` body.

use serde_json::{Value, json};

use crate::resource::ResourceType;

/// One cause of a validation failure (`details.causes[]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// `FieldValueForbidden`, `FieldValueInvalid`, `FieldValueRequired`, …
    pub reason: &'static str,
    /// Field path, e.g. `spec.persistentvolumesource`.
    pub field: String,
    /// `<field>: <Type>: <detail>` as printed in the message.
    pub message: String,
}

impl Cause {
    /// A `Forbidden` field error.
    pub fn forbidden(field: &str, detail: &str) -> Self {
        Self {
            reason: "FieldValueForbidden",
            field: field.to_owned(),
            message: format!("Forbidden: {detail}"),
        }
    }

    /// A `Required value` field error.
    pub fn required(field: &str) -> Self {
        Self {
            reason: "FieldValueRequired",
            field: field.to_owned(),
            message: "Required value".to_owned(),
        }
    }

    /// An `Invalid value` field error.
    pub fn invalid(field: &str, value: &str, detail: &str) -> Self {
        Self {
            reason: "FieldValueInvalid",
            field: field.to_owned(),
            message: format!("Invalid value: {value:?}: {detail}"),
        }
    }

    /// An `Invalid value` field error about a number (printed unquoted, as upstream does).
    pub fn invalid_number(field: &str, value: i64, detail: &str) -> Self {
        Self {
            reason: "FieldValueInvalid",
            field: field.to_owned(),
            message: format!("Invalid value: {value}: {detail}"),
        }
    }

    /// A `Required value` error with a detail.
    pub fn required_because(field: &str, detail: &str) -> Self {
        Self {
            reason: "FieldValueRequired",
            field: field.to_owned(),
            message: format!("Required value: {detail}"),
        }
    }
}

/// A failed request: the HTTP code and the `Status` the server returns.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status code.
    pub code: u16,
    /// `NotFound`, `AlreadyExists`, `Conflict`, `Invalid`, …
    pub reason: &'static str,
    /// Human-readable message.
    pub message: String,
    /// `details` of the Status, if any.
    pub details: Option<Value>,
}

fn details(rt: &ResourceType, name: &str) -> Value {
    json!({"name": name, "group": rt.group, "kind": rt.plural})
}

impl ApiError {
    /// 404 for a missing object.
    pub fn not_found(rt: &ResourceType, name: &str) -> Self {
        Self {
            code: 404,
            reason: "NotFound",
            message: format!("{} {name:?} not found", rt.qualified_plural()),
            details: Some(details(rt, name)),
        }
    }

    /// 404 for a missing namespace on create.
    pub fn namespace_not_found(namespace: &str) -> Self {
        Self {
            code: 404,
            reason: "NotFound",
            message: format!("namespaces {namespace:?} not found"),
            details: Some(json!({"name": namespace, "kind": "namespaces"})),
        }
    }

    /// 409 for a create over an existing name.
    pub fn already_exists(rt: &ResourceType, name: &str, terminating: bool) -> Self {
        let prefix = if terminating {
            "object is being deleted: "
        } else {
            ""
        };
        Self {
            code: 409,
            reason: "AlreadyExists",
            message: format!("{prefix}{} {name:?} already exists", rt.qualified_plural()),
            details: Some(details(rt, name)),
        }
    }

    /// 409 for a stale resourceVersion.
    pub fn conflict(rt: &ResourceType, name: &str) -> Self {
        Self::conflict_because(
            rt,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 409 with a specific reason text (failed preconditions).
    pub fn conflict_because(rt: &ResourceType, name: &str, why: &str) -> Self {
        Self {
            code: 409,
            reason: "Conflict",
            message: format!(
                "Operation cannot be fulfilled on {} {name:?}: {why}",
                rt.qualified_plural()
            ),
            details: Some(details(rt, name)),
        }
    }

    /// 422 with field causes.
    pub fn invalid(rt: &ResourceType, name: &str, causes: Vec<Cause>) -> Self {
        Self::invalid_kind(&rt.qualified_kind(), &rt.group, &rt.kind, name, causes)
    }

    /// 422 with field causes about a kind named `qualified_kind` (`PatchOptions.meta.k8s.io`).
    pub fn invalid_kind(
        qualified_kind: &str,
        group: &str,
        kind: &str,
        name: &str,
        causes: Vec<Cause>,
    ) -> Self {
        let texts: Vec<String> = causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        let joined = if texts.len() == 1 {
            texts[0].clone()
        } else {
            format!("[{}]", texts.join(", "))
        };
        let causes: Vec<Value> = causes
            .iter()
            .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
            .collect();
        Self {
            code: 422,
            reason: "Invalid",
            message: format!("{qualified_kind} {name:?} is invalid: {joined}"),
            details: Some(json!({"name": name, "group": group, "kind": kind, "causes": causes})),
        }
    }

    /// 400 for a malformed request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            code: 400,
            reason: "BadRequest",
            message: message.into(),
            details: None,
        }
    }

    /// 403 for a request admission refuses.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self {
            code: 403,
            reason: "Forbidden",
            message: message.into(),
            details: None,
        }
    }

    /// 405 for a verb the path does not support.
    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self {
            code: 405,
            reason: "MethodNotAllowed",
            message: message.into(),
            details: None,
        }
    }

    /// 410 for an expired continue token or resourceVersion.
    pub fn expired(message: impl Into<String>) -> Self {
        Self {
            code: 410,
            reason: "Expired",
            message: message.into(),
            details: None,
        }
    }

    /// 415 for an unknown patch content type.
    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self {
            code: 415,
            reason: "UnsupportedMediaType",
            message: format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {content_type:?})"
            ),
            details: None,
        }
    }

    /// 415 for a create or update body in a format the simulator does not decode
    /// (protobuf, CBOR), naming what works instead.
    pub fn unsupported_body(content_type: &str) -> Self {
        Self {
            code: 415,
            reason: "UnsupportedMediaType",
            message: format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml \
                 (kube-sim does not decode {content_type:?}; kubectl's generators such as `kubectl create configmap` send protobuf: \
                 write a manifest and use `kubectl create -f` or `kubectl apply -f` instead)"
            ),
            details: None,
        }
    }

    /// 500 with a message.
    pub fn internal(message: impl Into<String>) -> Self {
        Self {
            code: 500,
            reason: "InternalError",
            message: message.into(),
            details: None,
        }
    }

    /// 404 for a path that names no resource.
    pub fn unknown_path(path: &str) -> Self {
        Self {
            code: 404,
            reason: "NotFound",
            message: format!("the server could not find the requested resource ({path})"),
            details: None,
        }
    }

    /// The `Status` object.
    pub fn status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(details) = &self.details {
            status["details"] = details.clone();
        }
        status
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.reason, self.message)
    }
}

impl std::error::Error for ApiError {}
