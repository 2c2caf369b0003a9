//! Prometheus metrics: reviews by kind and result, rule decisions, review latency, reloads.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of `reviews_total`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ReviewLabels {
    /// The reviewed kind (`other` for kinds the webhook does not inspect, `unknown` when unparsed).
    pub kind: &'static str,
    /// `allowed`, `warned`, `denied` or `malformed`.
    pub result: &'static str,
}

/// Labels of `rule_decisions_total`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct DecisionLabels {
    /// The rule that matched.
    pub rule: &'static str,
    /// `deny`, `warn` or `allow`.
    pub action: &'static str,
}

/// Labels of `reloads_total`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ReloadLabels {
    /// `certificate` or `policy`.
    pub file: &'static str,
    /// `ok` or `error`.
    pub result: &'static str,
}

/// The webhook's metrics and the registry that exposes them.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// AdmissionReviews answered, by kind and result.
    pub reviews: Family<ReviewLabels, Counter>,
    /// Rule matches, by rule and the action the policy took.
    pub decisions: Family<DecisionLabels, Counter>,
    /// Time to answer one review (parse, rules, encode), in seconds.
    pub latency: Histogram,
    /// Certificate and policy reloads, by file and result.
    pub reloads: Family<ReloadLabels, Counter>,
    /// Failed StorageClass lists or watches (each is retried with backoff).
    pub storage_class_watch_errors: Counter,
}

impl Metrics {
    /// A fresh set of metrics under the `csi_migrate_webhook` prefix.
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::with_prefix("csi_migrate_webhook");
        let reviews = Family::<ReviewLabels, Counter>::default();
        let decisions = Family::<DecisionLabels, Counter>::default();
        // 10 µs .. ~5 s
        let latency = Histogram::new(exponential_buckets(0.000_01, 2.5, 15));
        let reloads = Family::<ReloadLabels, Counter>::default();
        let storage_class_watch_errors = Counter::default();
        registry.register(
            "reviews",
            "AdmissionReviews answered, by kind and result",
            reviews.clone(),
        );
        registry.register(
            "rule_decisions",
            "Rule matches, by rule and the action the policy took",
            decisions.clone(),
        );
        registry.register(
            "review_duration_seconds",
            "Time to answer one AdmissionReview",
            latency.clone(),
        );
        registry.register(
            "reloads",
            "Certificate and policy file reloads",
            reloads.clone(),
        );
        registry.register(
            "storage_class_watch_errors",
            "Failed StorageClass lists or watches (retried with backoff)",
            storage_class_watch_errors.clone(),
        );
        Arc::new(Metrics {
            registry,
            reviews,
            decisions,
            latency,
            reloads,
            storage_class_watch_errors,
        })
    }

    /// The OpenMetrics text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_names() {
        let m = Metrics::new();
        m.reviews
            .get_or_create(&ReviewLabels {
                kind: "Pod",
                result: "warned",
            })
            .inc();
        m.decisions
            .get_or_create(&DecisionLabels {
                rule: "inTreeInlineVolume",
                action: "warn",
            })
            .inc();
        m.latency.observe(0.001);
        let text = m.encode();
        for needle in [
            "csi_migrate_webhook_reviews_total{kind=\"Pod\",result=\"warned\"} 1",
            "csi_migrate_webhook_rule_decisions_total{rule=\"inTreeInlineVolume\",action=\"warn\"} 1",
            "csi_migrate_webhook_review_duration_seconds_count 1",
            "# EOF",
        ] {
            assert!(text.contains(needle), "{needle} in\n{text}");
        }
    }
}
