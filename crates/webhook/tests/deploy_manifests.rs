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

/// Every document by kind and name.
fn by_kind(all: &BTreeMap<PathBuf, Vec<Value>>) -> BTreeMap<String, BTreeMap<String, Value>> {
    let mut kinds: BTreeMap<String, BTreeMap<String, Value>> = BTreeMap::new();
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
            let name = doc["metadata"]["name"]
                .as_str()
                .unwrap_or_else(|| panic!("{}: no name", path.display()));
            let previous = kinds
                .entry(kind.to_owned())
                .or_default()
                .insert(name.to_owned(), doc.clone());
            assert!(previous.is_none(), "{kind} {name} twice");
        }
    }
    kinds
}

/// The only object of `kind`.
fn one<'a>(kinds: &'a BTreeMap<String, BTreeMap<String, Value>>, kind: &str) -> &'a Value {
    let objects = &kinds[kind];
    assert_eq!(objects.len(), 1, "one {kind}: {:?}", objects.keys());
    objects.values().next().unwrap()
}

/// The object of `kind` named `name`.
fn named<'a>(
    kinds: &'a BTreeMap<String, BTreeMap<String, Value>>,
    kind: &str,
    name: &str,
) -> &'a Value {
    kinds[kind]
        .get(name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

fn container_args(deployment: &Value) -> Vec<&str> {
    deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect()
}

#[test]
fn every_manifest_parses_and_has_the_expected_kinds() {
    let all = documents(&deploy_dir());
    let kinds = by_kind(&all);
    let want = [
        ("Namespace", 1),
        ("ServiceAccount", 1),
        ("ClusterRole", 1),
        ("ClusterRoleBinding", 1),
        ("ConfigMap", 1),
        ("Deployment", 1),
        ("Service", 1),
        ("PodDisruptionBudget", 1),
        ("ValidatingWebhookConfiguration", 1),
        ("Issuer", 2),
        ("Certificate", 2),
    ];
    let got: Vec<&str> = kinds.keys().map(String::as_str).collect();
    for (kind, count) in want {
        assert!(kinds.contains_key(kind), "missing {kind}; have {got:?}");
        assert_eq!(kinds[kind].len(), count, "{kind}");
    }
    assert_eq!(kinds.len(), want.len(), "unexpected kinds: {got:?}");
    // Namespaced objects all live in the webhook's namespace.
    for (kind, objects) in &kinds {
        for doc in objects.values() {
            if !matches!(
                kind.as_str(),
                "Namespace"
                    | "ValidatingWebhookConfiguration"
                    | "ClusterRole"
                    | "ClusterRoleBinding"
            ) {
                assert_eq!(doc["metadata"]["namespace"], "csi-migrate-system", "{kind}");
            } else {
                assert!(doc["metadata"].get("namespace").is_none(), "{kind}");
            }
        }
    }
}

#[test]
fn deployment_is_hardened_and_wired_to_the_service_and_secret() {
    let kinds = by_kind(&documents(&deploy_dir()));
    let deployment = one(&kinds, "Deployment");
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
    let args = container_args(deployment);
    assert_eq!(args[0], "webhook");
    for flag in [
        "--tls-cert=",
        "--tls-key=",
        "--listen=",
        "--metrics-listen=",
        "--policy=",
        "--log-format=json",
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
        named(&kinds, "Certificate", "csi-migrate-webhook")["spec"]["secretName"]
    );

    let labels = &deployment["spec"]["template"]["metadata"]["labels"];
    for (key, value) in one(&kinds, "Service")["spec"]["selector"]
        .as_object()
        .unwrap()
    {
        assert_eq!(&labels[key], value, "service selector {key}");
    }
    for (key, value) in one(&kinds, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"]
        .as_object()
        .unwrap()
    {
        assert_eq!(&labels[key], value, "PDB selector {key}");
    }
}

#[test]
fn the_storage_class_cache_is_used_and_may_only_read_storage_classes() {
    let kinds = by_kind(&documents(&deploy_dir()));
    let deployment = one(&kinds, "Deployment");
    let pod = &deployment["spec"]["template"]["spec"];
    let account = one(&kinds, "ServiceAccount");
    assert_eq!(pod["serviceAccountName"], account["metadata"]["name"]);
    // The token must be mounted for the in-cluster client.
    assert_ne!(pod["automountServiceAccountToken"], false);
    assert_ne!(account["automountServiceAccountToken"], false);
    assert!(
        container_args(deployment).contains(&"--storage-classes=cluster"),
        "{:?}",
        container_args(deployment)
    );

    let role = one(&kinds, "ClusterRole");
    let rules = role["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 1, "{rules:?}");
    assert_eq!(rules[0]["apiGroups"], serde_json::json!(["storage.k8s.io"]));
    assert_eq!(rules[0]["resources"], serde_json::json!(["storageclasses"]));
    assert_eq!(
        rules[0]["verbs"],
        serde_json::json!(["get", "list", "watch"])
    );

    let binding = one(&kinds, "ClusterRoleBinding");
    assert_eq!(binding["roleRef"]["kind"], "ClusterRole");
    assert_eq!(binding["roleRef"]["name"], role["metadata"]["name"]);
    let subjects = binding["subjects"].as_array().unwrap();
    assert_eq!(subjects.len(), 1);
    assert_eq!(subjects[0]["kind"], "ServiceAccount");
    assert_eq!(subjects[0]["name"], account["metadata"]["name"]);
    assert_eq!(subjects[0]["namespace"], account["metadata"]["namespace"]);
}

/// `5s` → 5.
fn seconds(flag_value: &str) -> u64 {
    flag_value
        .strip_suffix('s')
        .unwrap_or(flag_value)
        .parse()
        .unwrap_or_else(|_| panic!("{flag_value:?} is not a number of seconds"))
}

#[test]
fn termination_grace_covers_the_shutdown_delay_and_drain() {
    let kinds = by_kind(&documents(&deploy_dir()));
    let deployment = one(&kinds, "Deployment");
    let delay = container_args(deployment)
        .iter()
        .find_map(|a| a.strip_prefix("--shutdown-delay="))
        .map_or(5, seconds);
    // The server drains in-flight requests for up to 10 s after the delay.
    let grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        .as_u64()
        .unwrap();
    assert!(grace > delay + 10, "grace {grace} s, delay {delay} s");
}

#[test]
fn cert_manager_issues_the_leaf_from_a_ca_that_the_api_server_trusts() {
    let kinds = by_kind(&documents(&deploy_dir()));
    let issuer = |name: &str| named(&kinds, "Issuer", name);
    let certificates = &kinds["Certificate"];
    let (ca, leaf): (Vec<&Value>, Vec<&Value>) = certificates
        .values()
        .partition(|c| c["spec"]["isCA"] == true);
    let (ca, leaf) = (ca[0], leaf[0]);

    // The CA is self-signed, by a selfSigned Issuer.
    let ca_issuer_ref = &ca["spec"]["issuerRef"];
    assert_eq!(ca_issuer_ref["kind"], "Issuer");
    assert!(issuer(ca_issuer_ref["name"].as_str().unwrap())["spec"]["selfSigned"].is_object());
    // Its key survives renewals, so leaves signed before a CA renewal keep verifying.
    assert_eq!(ca["spec"]["privateKey"]["rotationPolicy"], "Never");

    // The leaf is issued by a CA Issuer backed by the CA certificate's Secret.
    let leaf_issuer_ref = &leaf["spec"]["issuerRef"];
    assert_eq!(leaf_issuer_ref["kind"], "Issuer");
    let leaf_issuer = issuer(leaf_issuer_ref["name"].as_str().unwrap());
    assert!(
        leaf_issuer["spec"].get("selfSigned").is_none(),
        "{leaf_issuer}"
    );
    assert_eq!(
        leaf_issuer["spec"]["ca"]["secretName"],
        ca["spec"]["secretName"]
    );
    assert_ne!(leaf["spec"]["isCA"], true);
    assert_ne!(leaf["spec"]["secretName"], ca["spec"]["secretName"]);
    let service = one(&kinds, "Service");
    let host = format!(
        "{}.{}.svc",
        service["metadata"]["name"].as_str().unwrap(),
        service["metadata"]["namespace"].as_str().unwrap()
    );
    assert!(
        leaf["spec"]["dnsNames"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| *d == host),
        "{host}"
    );

    // caBundle comes from the CA, not the leaf: leaf renewals never change it.
    let config = one(&kinds, "ValidatingWebhookConfiguration");
    assert_eq!(
        config["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
        format!(
            "{}/{}",
            ca["metadata"]["namespace"].as_str().unwrap(),
            ca["metadata"]["name"].as_str().unwrap()
        )
    );
}

#[test]
fn webhook_configuration_is_scoped_and_deliberate() {
    let kinds = by_kind(&documents(&deploy_dir()));
    let config = one(&kinds, "ValidatingWebhookConfiguration");
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
        assert_eq!(service["name"], one(&kinds, "Service")["metadata"]["name"]);
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
fn example_policy_is_a_valid_policy_that_needs_no_class_names() {
    let kinds = by_kind(&documents(&deploy_dir()));
    let text = one(&kinds, "ConfigMap")["data"]["policy.yaml"]
        .as_str()
        .unwrap();
    let policy = Policy::from_yaml(text).unwrap();
    // With the StorageClass cache, classes are judged by their provisioner, not by name
    // (a name such as `standard` means different provisioners on different clusters).
    assert!(
        policy.in_tree_storage_classes.is_empty(),
        "{:?}",
        policy.in_tree_storage_classes
    );
    assert!(!policy.exemptions.is_empty());
}
