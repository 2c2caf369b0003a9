//! Fault injection for the API server: latency, errors by verb and resource, the Nth
//! write failing, and dropped connections — deterministic for a given seed.

use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::api_error::ApiError;

/// An error returned at a given rate for matching requests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ErrorRule {
    /// HTTP verb to match (`GET`, `PATCH`…); any when absent.
    #[serde(default)]
    pub verb: Option<String>,
    /// Resource plural to match (`persistentvolumeclaims`); any when absent.
    #[serde(default)]
    pub resource: Option<String>,
    /// Status to return: 500, 429 or 409.
    pub code: u16,
    /// Probability in 0..=1.
    pub rate: f64,
}

/// What to inject, as set by `--faults` or `PUT /_sim/v1/faults`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultConfig {
    /// Seed of the random choices.
    #[serde(default)]
    pub seed: u64,
    /// Delay added to every resource request.
    #[serde(default)]
    pub latency_ms: u64,
    /// Errors by verb and resource.
    #[serde(default)]
    pub errors: Vec<ErrorRule>,
    /// Fail the Nth write (POST/PUT/PATCH/DELETE) from now on with a 500, once (1-based).
    #[serde(default)]
    pub fail_nth_write: Option<u64>,
    /// Probability that a request's connection is dropped without an answer.
    #[serde(default)]
    pub drop_rate: f64,
    /// End every watch stream abruptly after this many events.
    #[serde(default)]
    pub drop_watch_after_events: Option<u64>,
}

/// What to do with one request.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultDecision {
    /// Serve it normally (after `delay`).
    Serve {
        /// Added latency.
        delay: Duration,
    },
    /// Answer with this error.
    Fail(ApiError),
    /// Close the connection without an answer.
    Drop,
}

#[derive(Debug, Default)]
struct FaultState {
    config: FaultConfig,
    rng: u64,
    writes: u64,
}

/// The fault injector shared by the handlers.
#[derive(Debug, Default)]
pub struct Faults {
    state: Mutex<FaultState>,
}

impl Faults {
    /// Replaces the configuration and restarts the random sequence and write count.
    pub fn set(&self, config: FaultConfig) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.rng = config.seed ^ 0x9e37_79b9_7f4a_7c15;
        state.writes = 0;
        state.config = config;
    }

    /// The current configuration.
    pub fn config(&self) -> FaultConfig {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .config
            .clone()
    }

    /// Decides the fate of one resource request.
    pub fn decide(&self, verb: &str, resource: &str) -> FaultDecision {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let delay = Duration::from_millis(state.config.latency_ms);
        if matches!(verb, "POST" | "PUT" | "PATCH" | "DELETE") {
            state.writes += 1;
            if state.config.fail_nth_write == Some(state.writes) {
                return FaultDecision::Fail(ApiError::internal(format!(
                    "injected failure of write #{}",
                    state.writes
                )));
            }
        }
        if state.config.drop_rate > 0.0 && next_unit(&mut state.rng) < state.config.drop_rate {
            return FaultDecision::Drop;
        }
        let rules = state.config.errors.clone();
        for rule in rules {
            let verb_matches = rule
                .verb
                .as_deref()
                .is_none_or(|v| v.eq_ignore_ascii_case(verb));
            let resource_matches = rule.resource.as_deref().is_none_or(|r| r == resource);
            if verb_matches && resource_matches && next_unit(&mut state.rng) < rule.rate {
                return FaultDecision::Fail(injected(rule.code, resource));
            }
        }
        FaultDecision::Serve { delay }
    }

    /// Events after which watch streams end abruptly, if configured.
    pub fn drop_watch_after(&self) -> Option<u64> {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .config
            .drop_watch_after_events
    }
}

fn injected(code: u16, resource: &str) -> ApiError {
    match code {
        429 => ApiError {
            code,
            reason: "TooManyRequests",
            message: "injected: the server has received too many requests and has asked us to try again later".to_owned(),
            details: Some(serde_json::json!({"retryAfterSeconds": 1})),
        },
        409 => ApiError {
            code,
            reason: "Conflict",
            message: format!(
                "Operation cannot be fulfilled on {resource}: the object has been modified; please apply your changes to the latest version and try again"
            ),
            details: None,
        },
        _ => ApiError::internal(format!("injected internal error ({code})")),
    }
}

/// xorshift64*: a small deterministic generator in 0..1.
fn next_unit(state: &mut u64) -> f64 {
    let mut x = if *state == 0 {
        0x2545_f491_4f6c_dd1d
    } else {
        *state
    };
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nth_write_fails_once_and_reads_do_not_count() {
        let faults = Faults::default();
        faults.set(FaultConfig {
            fail_nth_write: Some(2),
            ..FaultConfig::default()
        });
        let ok = FaultDecision::Serve {
            delay: Duration::ZERO,
        };
        assert_eq!(faults.decide("GET", "pods"), ok);
        assert_eq!(faults.decide("PATCH", "pods"), ok);
        assert!(matches!(faults.decide("DELETE", "pods"), FaultDecision::Fail(e) if e.code == 500));
        assert_eq!(faults.decide("DELETE", "pods"), ok);
    }

    #[test]
    fn the_same_seed_gives_the_same_faults() {
        let config = FaultConfig {
            seed: 7,
            errors: vec![ErrorRule {
                verb: Some("PATCH".into()),
                resource: None,
                code: 429,
                rate: 0.5,
            }],
            ..FaultConfig::default()
        };
        let run = || {
            let faults = Faults::default();
            faults.set(config.clone());
            (0..64)
                .map(|_| {
                    matches!(
                        faults.decide("PATCH", "persistentvolumes"),
                        FaultDecision::Fail(_)
                    )
                })
                .collect::<Vec<_>>()
        };
        let first = run();
        assert_eq!(first, run());
        assert!(first.iter().any(|f| *f) && first.iter().any(|f| !*f));
    }
}
