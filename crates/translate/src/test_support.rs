//! Helpers shared by the table tests: JSON in, JSON out, one assertion per case.

use k8s_openapi::api::core::v1::{PersistentVolume, Volume};
use k8s_openapi::api::storage::v1::StorageClass;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::Result;

/// Deserializes a test fixture, naming it when it does not fit the type.
pub(crate) fn parse<T: DeserializeOwned>(value: Value) -> T {
    let text = value.to_string();
    serde_json::from_value(value).unwrap_or_else(|e| panic!("bad fixture {text}: {e}"))
}

/// A PersistentVolume from JSON.
pub(crate) fn pv(value: Value) -> PersistentVolume {
    parse(value)
}

/// A pod Volume from JSON.
pub(crate) fn vol(value: Value) -> Volume {
    parse(value)
}

/// A StorageClass from JSON.
pub(crate) fn sc(value: Value) -> StorageClass {
    parse(value)
}

/// The JSON an object serializes to, without the `apiVersion`/`kind` k8s-openapi adds.
pub(crate) fn json<T: Serialize>(object: &T) -> Value {
    let mut value = serde_json::to_value(object).unwrap_or_else(|e| panic!("serialize: {e}"));
    if let Some(map) = value.as_object_mut() {
        map.remove("apiVersion");
        map.remove("kind");
    }
    value
}

/// Asserts a translation result equals `want`, as JSON on success, as the error otherwise.
#[track_caller]
pub(crate) fn check<T: Serialize>(name: &str, got: Result<T>, want: &Result<Value>) {
    match (got, want) {
        (Ok(got), Ok(want)) => assert_eq!(
            json(&got),
            *want,
            "case {name:?}\n got: {}\nwant: {}",
            json(&got),
            want
        ),
        (Err(got), Err(want)) => assert_eq!(got, *want, "case {name:?}"),
        (Ok(got), Err(want)) => {
            panic!("case {name:?}: want error {want:?}, got {}", json(&got))
        }
        (Err(got), Ok(want)) => panic!("case {name:?}: want {want}, got error {got:?}"),
    }
}
