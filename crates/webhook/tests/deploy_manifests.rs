//! Checks the manifests in `deploy/webhook/`: valid YAML, the expected kinds, and settings that matter.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use csi_migrate_webhook::Policy;
use serde_json::Value;

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/webhook")
}

/// Every document of every `*.yaml` file under `dir` (recursively), by file.
fn documents(dir: &Path) -> BTreeMap<PathBuf, Vec<Value>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(documents(&path));
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            let text = std::fs::read_to_string(&path).unwrap();
            let docs: Vec<Value> = serde_saphyr::from_multiple(&text)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            out.insert(path, docs);
        }
    }
    out
}

fn by_kind(all: &BTreeMap<PathBuf, Vec<Value>>) -> BTreeMap<String, Value> {
    let mut kinds = BTreeMap::new();
    for (path, docs) in all {
        for doc in docs {
            let kind = doc["kind"]
                .as_str()
                .unwrap_or_else(|| panic!("{}: no kind", path.display()));
            assert!(
                doc["apiVersion"].is_string(),
                "{}: no apiVersion",
                path.display()
            );
            assert!(
                doc["metadata"]["name"].is_string(),
                "{}: no name",
                path.display()
            );
            kinds.insert(kind.to_owned(), doc.clone());
        }
    }
    kinds
}

#[test]
fn every_manifest_parses_and_has_the_expected_kinds() {
    let all = documents(&deploy_dir());
    let kinds = by_kind(&all);
    let want = [
        "Namespace",
        "ServiceAccount",
        "ConfigMap",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "ValidatingWebhookConfiguration",
        "Issuer",
        "Certificate",
    ];
    let got: Vec<&str> = kinds.keys().map(String::as_str).collect();
    for kind in want {
        assert!(kinds.contains_key(kind), "missing {kind}; have {got:?}");
    }
    assert_eq!(kinds.len(), want.len(), "unexpected kinds: {got:?}");
    // Namespaced objects all live in the webhook's namespace.
    for (kind, doc) in &kinds {
        if !matches!(
            kind.as_str(),
            "Namespace" | "ValidatingWebhookConfiguration"
        ) {
            assert_eq!(doc["metadata"]["namespace"], "csi-migrate-system", "{kind}");
        }
    }
}

#[test]
fn deployment_is_hardened_and_wired_to_the_service_and_secret() {
    let kinds = by_kind(&documents(&deploy_dir()));
    let deployment = &kinds["Deployment"];
    assert_eq!(deployment["spec"]["replicas"], 2);
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let container = &pod["containers"][0];
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(
        container["securityContext"]["allowPrivilegeEscalation"],
        false
    );
    assert!(container["resources"]["requests"]["cpu"].is_string());
    assert!(container["resources"]["requests"]["memory"].is_string());
    let args: Vec<&str> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(args[0], "webhook");
    for flag in [
        "--tls-cert=",
        "--tls-key=",
        "--listen=",
        "--metrics-listen=",
        "--policy=",
    ] {
        assert!(
            args.iter().any(|a| a.starts_with(flag)),
            "{flag} in {args:?}"
        );
    }
    let secret = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["secret"].is_object())
        .unwrap();
    assert_eq!(
        secret["secret"]["secretName"],
        kinds["Certificate"]["spec"]["secretName"]
    );

    let labels = &deployment["spec"]["template"]["metadata"]["labels"];
    for (key, value) in kinds["Service"]["spec"]["selector"].as_object().unwrap() {
        assert_eq!(&labels[key], value, "service selector {key}");
    }
    for (key, value) in kinds["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"]
        .as_object()
        .unwrap()
    {
        assert_eq!(&labels[key], value, "PDB selector {key}");
    }
}

#[test]
fn webhook_configuration_is_scoped_and_deliberate() {
    let kinds = by_kind(&documents(&deploy_dir()));
    let config = &kinds["ValidatingWebhookConfiguration"];
    let certificate = &kinds["Certificate"];
    assert_eq!(
        config["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
        format!(
            "{}/{}",
            certificate["metadata"]["namespace"].as_str().unwrap(),
            certificate["metadata"]["name"].as_str().unwrap()
        )
    );
    let webhooks = config["webhooks"].as_array().unwrap();
    assert_eq!(webhooks.len(), 2);
    for webhook in webhooks {
        assert_eq!(webhook["sideEffects"], "None");
        assert_eq!(
            webhook["admissionReviewVersions"],
            serde_json::json!(["v1"])
        );
        assert!(matches!(
            webhook["failurePolicy"].as_str(),
            Some("Fail" | "Ignore")
        ));
        let service = &webhook["clientConfig"]["service"];
        assert_eq!(service["name"], kinds["Service"]["metadata"]["name"]);
        assert_eq!(service["path"], "/validate");
        for rule in webhook["rules"].as_array().unwrap() {
            let resources = rule["resources"].as_array().unwrap();
            assert!(!resources.iter().any(|r| r == "*"), "unscoped rule {rule}");
        }
    }
    let workloads = webhooks
        .iter()
        .find(|w| w["failurePolicy"] == "Ignore")
        .unwrap();
    let excluded = &workloads["namespaceSelector"]["matchExpressions"][0];
    assert_eq!(excluded["operator"], "NotIn");
    for ns in ["kube-system", "csi-migrate-system"] {
        assert!(
            excluded["values"]
                .as_array()
                .unwrap()
                .iter()
                .any(|v| v == ns),
            "{ns}"
        );
    }
}

#[test]
fn example_policy_is_a_valid_policy() {
    let kinds = by_kind(&documents(&deploy_dir()));
    let text = kinds["ConfigMap"]["data"]["policy.yaml"].as_str().unwrap();
    let policy = Policy::from_yaml(text).unwrap();
    assert_eq!(
        policy.in_tree_class_provisioner("gp2"),
        Some("kubernetes.io/aws-ebs")
    );
    assert!(!policy.exemptions.is_empty());
}
