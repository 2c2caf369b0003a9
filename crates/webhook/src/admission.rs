//! From one AdmissionReview request to a verdict: decode the object, run the rules, apply the policy.
//!
//! Which rules run, by kind and operation:
//!
//! | kind | operations | rules |
//! |---|---|---|
//! | StorageClass | CREATE, UPDATE | csiMigrationParameters, inTreeStorageClass, inTreeStorageClassParameters |
//! | PersistentVolume | CREATE | inTreePersistentVolume |
//! | PersistentVolumeClaim | CREATE | inTreePersistentVolumeClaim |
//! | Pod, PodTemplate, ReplicationController, Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob | CREATE, UPDATE (new volumes only) | inTreeInlineVolume (+ inTreePersistentVolumeClaim for StatefulSet claim templates) |
//!
//! Everything else (other kinds, DELETE, CONNECT, subresources) is allowed untouched.
//!
//! On a StorageClass UPDATE a policy `deny` is softened to `warn`: existing in-tree classes
//! must stay editable (removing the default-class annotation is a step of every
//! migration). One update is not softened: one that makes an in-tree class the cluster
//! default (sets `storageclass.kubernetes.io/is-default-class` or its beta spelling to
//! `"true"` where the old object did not have it), since it puts every new claim without
//! a class on the in-tree plugin. Under `deny` it is denied.
//!
//! Warnings longer than [`MAX_WARNING_CHARS`] are shortened (the API server may truncate
//! long warnings itself, and cut off the part that says what to do).

use csi_migrate_translate::Translator;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{
    PersistentVolume, PersistentVolumeClaim, Pod, PodSpec, PodTemplate, PodTemplateSpec,
    ReplicationController,
};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use crate::policy::{Action, Policy, PolicyRule};
use crate::review::{AdmissionRequest, AdmissionResponse, ReviewError};
use crate::rules::{
    Finding, KnownClasses, ObjectName, Rule, csi_migration_parameters, in_tree_claim,
    in_tree_persistent_volume, in_tree_storage_class, in_tree_storage_class_parameters,
    inline_volume, is_default_class,
};

/// The longest warning sent, in characters; longer ones end in `…`.
pub const MAX_WARNING_CHARS: usize = 256;

fn shorten(mut message: String) -> String {
    if message.chars().count() > MAX_WARNING_CHARS {
        let cut = message
            .char_indices()
            .nth(MAX_WARNING_CHARS - 1)
            .map_or(message.len(), |(i, _)| i);
        message.truncate(cut);
        message.push('…');
    }
    message
}

/// The kinds the webhook understands, as a bounded metrics label.
pub fn kind_label(group: &str, kind: &str) -> &'static str {
    match (group, kind) {
        ("storage.k8s.io", "StorageClass") => "StorageClass",
        ("", "PersistentVolume") => "PersistentVolume",
        ("", "PersistentVolumeClaim") => "PersistentVolumeClaim",
        ("", "Pod") => "Pod",
        ("", "PodTemplate") => "PodTemplate",
        ("", "ReplicationController") => "ReplicationController",
        ("apps", "Deployment") => "Deployment",
        ("apps", "StatefulSet") => "StatefulSet",
        ("apps", "DaemonSet") => "DaemonSet",
        ("apps", "ReplicaSet") => "ReplicaSet",
        ("batch", "Job") => "Job",
        ("batch", "CronJob") => "CronJob",
        _ => "other",
    }
}

/// What the webhook decided about one request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Verdict {
    /// Whether the request is admitted.
    pub allowed: bool,
    /// The denial message (only when not allowed).
    pub denial: Option<String>,
    /// Warnings for the user.
    pub warnings: Vec<String>,
    /// Every finding with the action taken on it (for metrics and logs).
    pub outcomes: Vec<(Rule, Action)>,
}

impl Verdict {
    /// The AdmissionResponse for the request with this `uid`.
    pub fn into_response(self, uid: &str) -> AdmissionResponse {
        let mut response = match self.denial {
            Some(message) if !self.allowed => AdmissionResponse::deny(uid, message),
            _ => AdmissionResponse::allow(uid),
        };
        response.warnings = self.warnings;
        response
    }

    /// `denied`, `warned` or `allowed`, for metrics and logs.
    pub fn result_label(&self) -> &'static str {
        if !self.allowed {
            "denied"
        } else if !self.warnings.is_empty() {
            "warned"
        } else {
            "allowed"
        }
    }
}

/// Applies the policy to the findings about an object in `namespace`.
///
/// `soften_deny` turns a policy `deny` into `warn` (StorageClass updates); the
/// `csiMigrationParameters` rule always denies.
pub fn decide(
    findings: Vec<Finding>,
    policy: &Policy,
    namespace: Option<&str>,
    soften_deny: bool,
) -> Verdict {
    let mut verdict = Verdict {
        allowed: true,
        ..Verdict::default()
    };
    let mut denials: Vec<String> = Vec::new();
    for finding in findings {
        let action = match finding.rule {
            Rule::CsiMigrationParameters => Action::Deny,
            Rule::Policy(rule) => match policy.action(rule, namespace) {
                Action::Deny if soften_deny => Action::Warn,
                action => action,
            },
        };
        verdict.outcomes.push((finding.rule, action));
        match action {
            Action::Deny => denials.push(finding.message),
            Action::Warn => verdict.warnings.push(shorten(finding.message)),
            Action::Allow => {}
        }
    }
    if !denials.is_empty() {
        verdict.allowed = false;
        verdict.denial = Some(denials.join("; "));
    }
    verdict
}

fn decode<T: DeserializeOwned>(
    raw: &RawValue,
    field: &'static str,
    kind: &str,
) -> Result<T, ReviewError> {
    let mut deserializer = serde_json::Deserializer::from_str(raw.get());
    serde_path_to_error::deserialize(&mut deserializer).map_err(|error| ReviewError::Object {
        field,
        kind: kind.to_owned(),
        path: match error.path().to_string().as_str() {
            "." => field.to_owned(),
            inner => format!("{field}.{inner}"),
        },
        source: error.into_inner(),
    })
}

/// The pod template (and, for StatefulSets, claim templates) of a workload object.
struct Workload {
    metadata: ObjectMeta,
    pod: Option<PodSpec>,
    claim_templates: Vec<PersistentVolumeClaim>,
}

fn template_spec(template: Option<PodTemplateSpec>) -> Option<PodSpec> {
    template.and_then(|t| t.spec)
}

fn decode_workload(
    kind: &'static str,
    raw: &RawValue,
    field: &'static str,
) -> Result<Workload, ReviewError> {
    let simple = |metadata, pod| Workload {
        metadata,
        pod,
        claim_templates: Vec::new(),
    };
    Ok(match kind {
        "Pod" => {
            let o: Pod = decode(raw, field, kind)?;
            simple(o.metadata, o.spec)
        }
        "PodTemplate" => {
            let o: PodTemplate = decode(raw, field, kind)?;
            simple(o.metadata, template_spec(o.template))
        }
        "ReplicationController" => {
            let o: ReplicationController = decode(raw, field, kind)?;
            simple(o.metadata, template_spec(o.spec.and_then(|s| s.template)))
        }
        "Deployment" => {
            let o: Deployment = decode(raw, field, kind)?;
            simple(o.metadata, template_spec(Some(o.spec.template)))
        }
        "DaemonSet" => {
            let o: DaemonSet = decode(raw, field, kind)?;
            simple(o.metadata, template_spec(Some(o.spec.template)))
        }
        "ReplicaSet" => {
            let o: ReplicaSet = decode(raw, field, kind)?;
            simple(o.metadata, template_spec(o.spec.template))
        }
        "Job" => {
            let o: Job = decode(raw, field, kind)?;
            simple(o.metadata, template_spec(o.spec.map(|s| s.template)))
        }
        "CronJob" => {
            let o: CronJob = decode(raw, field, kind)?;
            let template = o.spec.job_template.spec.map(|s| s.template);
            simple(o.metadata, template_spec(template))
        }
        "StatefulSet" => {
            let o: StatefulSet = decode(raw, field, kind)?;
            let (pod, claim_templates) = (
                o.spec.template.spec,
                o.spec.volume_claim_templates.unwrap_or_default(),
            );
            Workload {
                metadata: o.metadata,
                pod,
                claim_templates,
            }
        }
        _ => simple(ObjectMeta::default(), None),
    })
}

fn object_name(metadata: &ObjectMeta, request: &AdmissionRequest<'_>) -> String {
    metadata
        .name
        .clone()
        .or_else(|| request.name.clone().filter(|n| !n.is_empty()))
        .or_else(|| metadata.generate_name.as_ref().map(|g| format!("{g}*")))
        .unwrap_or_default()
}

/// Reviews one request: decodes its object, runs the rules for its kind and applies the policy.
///
/// Returns an error only for a malformed request (the server answers 400); an unknown
/// kind, a DELETE or a subresource is allowed.
/// `classes` is what the webhook knows of the cluster's StorageClasses (for the claim rule).
pub fn review(
    request: &AdmissionRequest<'_>,
    policy: &Policy,
    classes: &dyn KnownClasses,
    translator: &Translator,
) -> Result<Verdict, ReviewError> {
    let allow = || Verdict {
        allowed: true,
        ..Verdict::default()
    };
    let is_create = request.operation == "CREATE";
    let is_update = request.operation == "UPDATE";
    if !(is_create || is_update)
        || request
            .sub_resource
            .as_deref()
            .is_some_and(|s| !s.is_empty())
    {
        return Ok(allow());
    }
    let kind = kind_label(&request.kind.group, &request.kind.kind);
    if kind == "other" {
        return Ok(allow());
    }
    let object = request.object.ok_or_else(|| ReviewError::MissingObject {
        operation: request.operation.clone(),
        kind: request.kind.kind.clone(),
    })?;
    let namespace = request.namespace.as_deref().filter(|ns| !ns.is_empty());
    match kind {
        "StorageClass" => {
            let sc: StorageClass = decode(object, "object", kind)?;
            let becomes_default = is_update && is_default_class(&sc) && {
                match request.old_object {
                    Some(old) => {
                        let old: StorageClass = decode(old, "oldObject", kind)?;
                        !is_default_class(&old)
                    }
                    None => true,
                }
            };
            let mut in_tree = in_tree_storage_class::check(&sc, translator);
            if becomes_default && let Some(finding) = &mut in_tree {
                // Said early: warnings may be shortened at the end.
                finding.message = finding.message.replacen(
                    " uses the in-tree provisioner",
                    " would become the cluster default class, but uses the in-tree provisioner",
                    1,
                );
            }
            let findings: Vec<Finding> = [
                csi_migration_parameters::check(&sc, translator),
                in_tree,
                in_tree_storage_class_parameters::check(&sc),
            ]
            .into_iter()
            .flatten()
            .collect();
            // An update that makes an in-tree class the default adds in-tree use: not softened.
            let soften = is_update
                && !(becomes_default
                    && findings
                        .iter()
                        .any(|f| f.rule == Rule::Policy(PolicyRule::InTreeStorageClass)));
            Ok(decide(findings, policy, None, soften))
        }
        "PersistentVolume" if is_create => {
            let pv: PersistentVolume = decode(object, "object", kind)?;
            let findings = in_tree_persistent_volume::check(&pv, translator)
                .into_iter()
                .collect();
            Ok(decide(findings, policy, None, false))
        }
        "PersistentVolumeClaim" if is_create => {
            let claim: PersistentVolumeClaim = decode(object, "object", kind)?;
            let namespace = namespace.or(claim.metadata.namespace.as_deref());
            let name = object_name(&claim.metadata, request);
            let object_name = ObjectName {
                kind,
                namespace,
                name: &name,
            };
            let findings = in_tree_claim::check(&claim, object_name, policy, classes, translator)
                .into_iter()
                .collect();
            Ok(decide(findings, policy, namespace, false))
        }
        "PersistentVolume" | "PersistentVolumeClaim" => Ok(allow()),
        _ => {
            let workload = decode_workload(kind, object, "object")?;
            let old = match (is_update, request.old_object) {
                (true, Some(old)) => Some(decode_workload(kind, old, "oldObject")?),
                _ => None,
            };
            let namespace = namespace.or(workload.metadata.namespace.as_deref());
            let name = object_name(&workload.metadata, request);
            let object_name = ObjectName {
                kind,
                namespace,
                name: &name,
            };
            let mut findings = match &workload.pod {
                Some(spec) => inline_volume::check(
                    spec,
                    old.as_ref().and_then(|o| o.pod.as_ref()),
                    object_name,
                    namespace.unwrap_or("default"),
                    translator,
                ),
                None => Vec::new(),
            };
            for claim in &workload.claim_templates {
                let template = claim.metadata.name.as_deref().unwrap_or_default();
                let existed = old.as_ref().is_some_and(|o| {
                    o.claim_templates
                        .iter()
                        .any(|c| c.metadata.name.as_deref() == Some(template))
                });
                if existed {
                    continue;
                }
                let label = format!("{name}, claim template {template:?}");
                let claim_name = ObjectName {
                    kind,
                    namespace,
                    name: &label,
                };
                findings.extend(in_tree_claim::check(
                    claim, claim_name, policy, classes, translator,
                ));
            }
            Ok(decide(findings, policy, namespace, false))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::review::parse_review;
    use serde_json::{Value, json};

    fn run(
        policy: &Policy,
        kind: (&str, &str),
        operation: &str,
        object: Value,
        old: Value,
    ) -> Result<Verdict, String> {
        let body = json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "u", "kind": {"group": kind.0, "version": "v1", "kind": kind.1},
                        "namespace": "ns", "operation": operation, "object": object, "oldObject": old},
        })
        .to_string();
        let request = parse_review(body.as_bytes()).map_err(|e| e.to_string())?;
        review(
            &request,
            policy,
            &crate::rules::NoClasses,
            &Translator::new(),
        )
        .map_err(|e| e.to_string())
    }

    fn deployment(volumes: Value) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "ns"},
               "spec": {"selector": {}, "template": {"spec": {"containers": [{"name": "c"}], "volumes": volumes}}}})
    }

    #[test]
    fn decide_applies_policy() {
        let policy = Policy::from_yaml("rules:\n  inTreeInlineVolume: deny\n  inTreePersistentVolume: allow\nexemptions:\n  - namespace: legacy\n").unwrap();
        let f = |rule, m: &str| Finding::new(rule, m.to_owned());
        let inline = Rule::Policy(PolicyRule::InTreeInlineVolume);
        let pv = Rule::Policy(PolicyRule::InTreePersistentVolume);
        let sc = Rule::Policy(PolicyRule::InTreeStorageClass);
        let cases = [
            (vec![], Some("ns"), false, true, None, 0),
            (
                vec![f(inline, "a"), f(inline, "b")],
                Some("ns"),
                false,
                false,
                Some("a; b"),
                0,
            ),
            (vec![f(inline, "a")], Some("legacy"), false, true, None, 0),
            (vec![f(inline, "a")], Some("ns"), true, true, None, 1),
            (vec![f(pv, "a")], None, false, true, None, 0),
            (
                vec![f(sc, "a"), f(inline, "b")],
                Some("ns"),
                false,
                false,
                Some("b"),
                1,
            ),
            (
                vec![f(Rule::CsiMigrationParameters, "m")],
                Some("legacy"),
                true,
                false,
                Some("m"),
                0,
            ),
        ];
        for (findings, ns, soften, allowed, denial, warnings) in cases {
            let n = findings.len();
            let v = decide(findings, &policy, ns, soften);
            assert_eq!(v.allowed, allowed, "{v:?}");
            assert_eq!(v.denial.as_deref(), denial, "{v:?}");
            assert_eq!(v.warnings.len(), warnings, "{v:?}");
            assert_eq!(v.outcomes.len(), n);
        }
    }

    #[test]
    fn dispatch_table() {
        let policy = Policy::default();
        let ebs = json!([{"name": "d", "awsElasticBlockStore": {"volumeID": "vol-1"}}]);
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                         "spec": {"containers": [{"name": "c"}], "volumes": ebs}});
        let sc = json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "s"},
                        "provisioner": "kubernetes.io/aws-ebs"});
        let pv = json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv"},
                        "spec": {"awsElasticBlockStore": {"volumeID": "vol-1"}}});
        // (kind, operation, object, oldObject, result label)
        let cases = [
            (("", "Pod"), "CREATE", pod.clone(), Value::Null, "warned"),
            (("", "Pod"), "DELETE", Value::Null, pod.clone(), "allowed"),
            (("", "Pod"), "CONNECT", Value::Null, Value::Null, "allowed"),
            (
                ("storage.k8s.io", "StorageClass"),
                "CREATE",
                sc.clone(),
                Value::Null,
                "warned",
            ),
            (
                ("", "PersistentVolume"),
                "CREATE",
                pv.clone(),
                Value::Null,
                "warned",
            ),
            (
                ("", "PersistentVolume"),
                "UPDATE",
                pv.clone(),
                pv.clone(),
                "allowed",
            ),
            (
                ("apps", "Deployment"),
                "CREATE",
                deployment(ebs.clone()),
                Value::Null,
                "warned",
            ),
            (
                ("apps", "Deployment"),
                "UPDATE",
                deployment(ebs.clone()),
                deployment(ebs.clone()),
                "allowed",
            ),
            (
                ("apps", "Deployment"),
                "UPDATE",
                deployment(ebs.clone()),
                deployment(json!([])),
                "warned",
            ),
            (
                ("example.com", "Widget"),
                "CREATE",
                json!({"anything": 1}),
                Value::Null,
                "allowed",
            ),
            (("", "Pod"), "CREATE", pod.clone(), Value::Null, "warned"),
        ];
        for (kind, op, object, old, want) in cases {
            let v = run(&policy, kind, op, object, old).unwrap();
            assert_eq!(v.result_label(), want, "{kind:?} {op}: {v:?}");
        }
    }

    #[test]
    fn every_workload_kind_is_inspected() {
        let policy = Policy::from_yaml("default: deny").unwrap();
        let ebs = json!([{"name": "d", "awsElasticBlockStore": {"volumeID": "vol-1"}}]);
        let template = json!({"spec": {"containers": [{"name": "c"}], "volumes": ebs}});
        let objects = [
            (
                ("", "PodTemplate"),
                json!({"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "t"}, "template": template}),
            ),
            (
                ("", "ReplicationController"),
                json!({"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "r"}, "spec": {"template": template}}),
            ),
            (
                ("apps", "StatefulSet"),
                json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "s"}, "spec": {"selector": {}, "serviceName": "s", "template": template}}),
            ),
            (
                ("apps", "DaemonSet"),
                json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "d"}, "spec": {"selector": {}, "template": template}}),
            ),
            (
                ("apps", "ReplicaSet"),
                json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "r"}, "spec": {"selector": {}, "template": template}}),
            ),
            (
                ("batch", "Job"),
                json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"}, "spec": {"template": template}}),
            ),
            (
                ("batch", "CronJob"),
                json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c"}, "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": template}}}}),
            ),
        ];
        for (kind, object) in objects {
            let v = run(&policy, kind, "CREATE", object, Value::Null).unwrap();
            assert!(!v.allowed, "{kind:?}");
            let denial = v.denial.unwrap();
            assert!(denial.starts_with(kind.1), "{denial}");
            assert!(denial.contains("ebs.csi.aws.com"), "{denial}");
        }
    }

    #[test]
    fn statefulset_claim_templates_use_the_claim_rule() {
        let policy = Policy::from_yaml("inTreeStorageClasses:\n  gp2: kubernetes.io/aws-ebs\nrules:\n  inTreePersistentVolumeClaim: deny\n").unwrap();
        let sts = |templates: Value| {
            json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
            "spec": {"selector": {}, "serviceName": "db", "template": {"spec": {"containers": [{"name": "c"}]}},
                     "volumeClaimTemplates": templates}})
        };
        let gp2 = json!([{"metadata": {"name": "data"}, "spec": {"storageClassName": "gp2"}}]);
        let v = run(
            &policy,
            ("apps", "StatefulSet"),
            "CREATE",
            sts(gp2.clone()),
            Value::Null,
        )
        .unwrap();
        let denial = v.denial.unwrap();
        assert!(
            denial.contains("StatefulSet \"db, claim template \\\"data\\\"\""),
            "{denial}"
        );
        assert!(denial.contains("ebs.csi.aws.com"), "{denial}");
        let v = run(
            &policy,
            ("apps", "StatefulSet"),
            "UPDATE",
            sts(gp2.clone()),
            sts(gp2),
        )
        .unwrap();
        assert!(v.allowed);
    }

    #[test]
    fn storage_class_update_softens_deny() {
        let policy = Policy::from_yaml("default: deny").unwrap();
        let sc = json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "s"},
                        "provisioner": "kubernetes.io/vsphere-volume", "parameters": {"diskformat": "zeroedthick"}});
        let v = run(
            &policy,
            ("storage.k8s.io", "StorageClass"),
            "CREATE",
            sc.clone(),
            Value::Null,
        )
        .unwrap();
        assert!(!v.allowed);
        assert_eq!(v.outcomes.len(), 2);
        let v = run(
            &policy,
            ("storage.k8s.io", "StorageClass"),
            "UPDATE",
            sc.clone(),
            sc,
        )
        .unwrap();
        assert!(v.allowed);
        assert_eq!(v.warnings.len(), 2);
    }

    #[test]
    fn update_making_an_in_tree_class_the_default_is_not_softened() {
        let deny = Policy::from_yaml("rules:\n  inTreeStorageClass: deny\n").unwrap();
        let sc = |provisioner: &str, annotations: Value| {
            json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                   "metadata": {"name": "gp2", "annotations": annotations},
                   "provisioner": provisioner})
        };
        let ga = "storageclass.kubernetes.io/is-default-class";
        let beta = "storageclass.beta.kubernetes.io/is-default-class";
        let update = |policy: &Policy, new: Value, old: Value| {
            run(
                policy,
                ("storage.k8s.io", "StorageClass"),
                "UPDATE",
                new,
                old,
            )
            .unwrap()
        };
        // (new annotations, old annotations, allowed)
        let cases = [
            (json!({ga: "true"}), json!({}), false),
            (json!({beta: "true"}), json!({}), false),
            (json!({ga: "true"}), json!({ga: "false"}), false),
            (json!({ga: "true", "team": "x"}), json!({ga: "true"}), true),
            (json!({ga: "true"}), json!({beta: "true"}), true),
            (json!({}), json!({ga: "true"}), true),
            (json!({ga: "false"}), json!({ga: "true"}), true),
            (json!({ga: "TRUE"}), json!({}), true),
            (json!({"team": "x"}), json!({}), true),
        ];
        for (new, old, allowed) in cases {
            let v = update(
                &deny,
                sc("kubernetes.io/aws-ebs", new.clone()),
                sc("kubernetes.io/aws-ebs", old.clone()),
            );
            assert_eq!(v.allowed, allowed, "{new} <- {old}: {v:?}");
            if !allowed {
                let denial = v.denial.unwrap();
                assert!(
                    denial.contains("would become the cluster default class"),
                    "{denial}"
                );
                assert!(denial.contains("ebs.csi.aws.com"), "{denial}");
            } else {
                assert_eq!(v.warnings.len(), 1, "{new} <- {old}: {v:?}");
            }
        }
        // A CSI class may become the default, and the policy's action still rules: warn warns.
        let v = update(
            &deny,
            sc("ebs.csi.aws.com", json!({ga: "true"})),
            sc("ebs.csi.aws.com", json!({})),
        );
        assert!(v.allowed && v.warnings.is_empty(), "{v:?}");
        let v = update(
            &Policy::default(),
            sc("kubernetes.io/aws-ebs", json!({ga: "true"})),
            sc("kubernetes.io/aws-ebs", json!({})),
        );
        assert!(v.allowed, "{v:?}");
        assert!(
            v.warnings[0].contains("would become the cluster default class"),
            "{v:?}"
        );
        // The in-tree parameters rule follows: not softened on such an update either.
        let v = update(
            &Policy::from_yaml("default: deny").unwrap(),
            json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                   "metadata": {"name": "thick", "annotations": {ga: "true"}},
                   "provisioner": "kubernetes.io/vsphere-volume", "parameters": {"diskformat": "zeroedthick"}}),
            json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "thick"},
                   "provisioner": "kubernetes.io/vsphere-volume", "parameters": {"diskformat": "zeroedthick"}}),
        );
        assert!(!v.allowed);
        assert_eq!(v.outcomes.len(), 2, "{v:?}");
    }

    #[test]
    fn long_warnings_are_shortened() {
        let short = "x".repeat(MAX_WARNING_CHARS);
        assert_eq!(shorten(short.clone()), short);
        let long = "é".repeat(MAX_WARNING_CHARS + 10);
        let got = shorten(long);
        assert_eq!(got.chars().count(), MAX_WARNING_CHARS);
        assert!(got.ends_with('…'));
    }

    #[test]
    fn malformed_objects_are_errors() {
        let policy = Policy::default();
        let cases = [
            (
                ("", "Pod"),
                "CREATE",
                Value::Null,
                "CREATE request for Pod has no object",
            ),
            (
                ("", "Pod"),
                "CREATE",
                json!({"apiVersion": "v1", "kind": "Pod", "spec": {"volumes": 7}}),
                "object is not a valid Pod",
            ),
            (
                ("", "Pod"),
                "CREATE",
                json!({"apiVersion": "v2", "kind": "Pod"}),
                "object is not a valid Pod",
            ),
            (
                ("storage.k8s.io", "StorageClass"),
                "CREATE",
                json!("text"),
                "not a valid StorageClass",
            ),
            (
                ("", "PersistentVolume"),
                "CREATE",
                json!({"apiVersion": "v1", "kind": "PersistentVolume", "spec": "x"}),
                "not a valid PersistentVolume",
            ),
        ];
        for (kind, op, object, needle) in cases {
            let err = run(&policy, kind, op, object, Value::Null).unwrap_err();
            assert!(err.contains(needle), "{err}");
        }
        let bad_old = run(
            &policy,
            ("apps", "Deployment"),
            "UPDATE",
            deployment(json!([])),
            json!([1]),
        )
        .unwrap_err();
        assert!(
            bad_old.contains("oldObject is not a valid Deployment"),
            "{bad_old}"
        );
    }

    #[test]
    fn unknown_kinds_and_subresources_are_allowed() {
        let v = run(
            &Policy::from_yaml("default: deny").unwrap(),
            ("", "Secret"),
            "CREATE",
            json!({"data": {"k": "c2VjcmV0"}}),
            Value::Null,
        )
        .unwrap();
        assert!(v.allowed && v.outcomes.is_empty());
    }
}
