//! The indexed, namespace-filtered view of a snapshot that rules read: lookups by name, in-tree usage, workloads.

use std::collections::{BTreeMap, BTreeSet};

use csi_migrate_translate::Translator;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{self as k8s, Node, PodSpec, PodTemplateSpec, Volume};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::storage::v1::{CSINode, StorageClass};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};

use crate::fast_hash::{HashMap, HashSet};
use crate::objects::{PersistentVolume, PersistentVolumeClaim, Pod};
use crate::plugins::{self, CEPHFS_PLUGIN_NAME, PluginInfo};
use crate::report::ObjectRef;
use crate::snapshot::{ClusterSnapshot, ResourceKind, ServerVersion, VersionSource};

/// Annotation marking the default StorageClass.
pub const DEFAULT_CLASS_ANNOTATION: &str = "storageclass.kubernetes.io/is-default-class";
/// Deprecated twin of [`DEFAULT_CLASS_ANNOTATION`].
pub const BETA_DEFAULT_CLASS_ANNOTATION: &str = "storageclass.beta.kubernetes.io/is-default-class";
/// Legacy class annotation on PVs and PVCs, still honoured.
pub const BETA_CLASS_ANNOTATION: &str = "volume.beta.kubernetes.io/storage-class";

/// What the scan needs to know about options; see [`crate::ScanOptions`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanOptions {
    /// Limit namespaced objects (and PVs, by their claim) to this namespace.
    pub namespace: Option<String>,
}

/// A PV with an in-tree source, with its translation.
#[derive(Debug)]
pub struct InTreeVolume<'a> {
    /// The PV.
    pub pv: &'a PersistentVolume,
    /// Its plugin.
    pub plugin: &'static PluginInfo,
    /// The translated CSI volume handle, or why translation failed.
    pub translation: Result<String, String>,
}

impl InTreeVolume<'_> {
    /// The PV's name.
    pub fn name(&self) -> &str {
        self.pv.metadata.name.as_deref().unwrap_or_default()
    }
}

/// An inline in-tree volume in a Pod or a pod template.
#[derive(Debug)]
pub struct InlineVolume<'a> {
    /// The Pod or workload whose spec has it.
    pub owner: ObjectRef,
    /// The namespace of that owner.
    pub namespace: &'a str,
    /// The volume.
    pub volume: &'a Volume,
    /// Its plugin.
    pub plugin: &'static PluginInfo,
}

/// The kinds of workload the scan reports readiness for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WorkloadKind {
    /// apps/v1 StatefulSet.
    StatefulSet,
    /// apps/v1 Deployment.
    Deployment,
    /// apps/v1 DaemonSet.
    DaemonSet,
    /// apps/v1 ReplicaSet not controlled by a Deployment.
    ReplicaSet,
    /// batch/v1 Job not controlled by a CronJob.
    Job,
    /// batch/v1 CronJob.
    CronJob,
    /// A Pod without a known controller.
    Pod,
    /// A claim on an in-tree PV that no workload uses.
    PersistentVolumeClaim,
}

impl WorkloadKind {
    /// The Kubernetes kind.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::StatefulSet => "StatefulSet",
            WorkloadKind::Deployment => "Deployment",
            WorkloadKind::DaemonSet => "DaemonSet",
            WorkloadKind::ReplicaSet => "ReplicaSet",
            WorkloadKind::Job => "Job",
            WorkloadKind::CronJob => "CronJob",
            WorkloadKind::Pod => "Pod",
            WorkloadKind::PersistentVolumeClaim => "PersistentVolumeClaim",
        }
    }

    /// Whether `csi-migrate migrate` converts this kind in place by itself.
    pub fn migrate_supports(self) -> bool {
        matches!(
            self,
            WorkloadKind::StatefulSet
                | WorkloadKind::Deployment
                | WorkloadKind::PersistentVolumeClaim
        )
    }

    /// Whether the kind keeps pods running (so replicas and disruption budgets matter).
    pub fn is_long_running(self) -> bool {
        matches!(
            self,
            WorkloadKind::StatefulSet
                | WorkloadKind::Deployment
                | WorkloadKind::DaemonSet
                | WorkloadKind::ReplicaSet
                | WorkloadKind::Pod
        )
    }
}

/// A workload that uses in-tree storage (claims on in-tree PVs, inline volumes, or
/// claim templates on in-tree classes).
#[derive(Debug)]
pub struct Workload<'a> {
    /// Kind.
    pub kind: WorkloadKind,
    /// The object.
    pub object: ObjectRef,
    /// Its metadata.
    pub meta: &'a ObjectMeta,
    /// Namespace.
    pub namespace: &'a str,
    /// Desired replicas (`spec.replicas`, default 1) where the kind has them.
    pub replicas: Option<i32>,
    /// Labels of its pods (template labels, or the pod's own).
    pub pod_labels: Option<&'a BTreeMap<String, String>>,
    /// The StatefulSet itself, for StatefulSet workloads.
    pub stateful_set: Option<&'a StatefulSet>,
    /// Its running pods.
    pub pods: Vec<&'a Pod>,
    /// Every claim it uses that exists (names in its namespace).
    pub claims: BTreeSet<String>,
    /// Claims bound to in-tree PVs.
    pub in_tree_claims: BTreeSet<String>,
    /// Inline in-tree volumes: (volume name, plugin).
    pub inline_volumes: Vec<(String, &'static PluginInfo)>,
    /// Claim templates on in-tree classes: (template name, class, plugin).
    pub in_tree_claim_templates: Vec<(String, String, &'static PluginInfo)>,
}

impl Workload<'_> {
    /// Whether the workload uses in-tree storage at all.
    pub fn uses_in_tree_storage(&self) -> bool {
        !self.in_tree_claims.is_empty()
            || !self.inline_volumes.is_empty()
            || !self.in_tree_claim_templates.is_empty()
    }
}

/// Everything rules read, indexed once.
#[derive(Debug)]
pub struct ClusterView<'a> {
    /// The snapshot.
    pub snapshot: &'a ClusterSnapshot,
    /// The translator.
    pub translator: Translator,
    /// The server version: given, or the newest kubelet as a lower bound.
    pub server_version: Option<ServerVersion>,
    /// The namespace filter.
    pub namespace: Option<&'a str>,
    /// StorageClasses by name.
    pub storage_classes: HashMap<&'a str, &'a StorageClass>,
    /// Default StorageClasses, by name.
    pub default_classes: Vec<&'a StorageClass>,
    /// Every PV in scope, by name.
    pub persistent_volumes: HashMap<&'a str, &'a PersistentVolume>,
    /// PVs with in-tree sources, in snapshot order.
    pub in_tree_volumes: Vec<InTreeVolume<'a>>,
    /// Index into `in_tree_volumes` by PV name.
    pub in_tree_volume_index: HashMap<&'a str, usize>,
    /// Every PVC in scope, by (namespace, name).
    pub claims: HashMap<(&'a str, &'a str), &'a PersistentVolumeClaim>,
    /// PVCs bound to in-tree PVs: (claim, index into `in_tree_volumes`), in snapshot order.
    pub in_tree_claims: Vec<(&'a PersistentVolumeClaim, usize)>,
    /// Inline in-tree volumes.
    pub inline_volumes: Vec<InlineVolume<'a>>,
    /// Workloads using in-tree storage, in a stable order.
    pub workloads: Vec<Workload<'a>>,
    /// Nodes by name.
    pub nodes: BTreeMap<&'a str, &'a Node>,
    /// CSINodes by name.
    pub csi_nodes: BTreeMap<&'a str, &'a CSINode>,
    /// Names of CSIDriver objects.
    pub csi_drivers: HashSet<&'a str>,
    /// Secrets by (namespace, name).
    pub secrets: HashSet<(&'a str, &'a str)>,
    /// PodDisruptionBudgets in scope.
    pub pod_disruption_budgets: Vec<&'a PodDisruptionBudget>,
    /// Plugins with at least one PV, inline volume or in-tree class in scope, by name.
    pub plugins_in_use: BTreeMap<&'static str, &'static PluginInfo>,
}

fn name_of(meta: &ObjectMeta) -> &str {
    meta.name.as_deref().unwrap_or_default()
}

fn namespace_of(meta: &ObjectMeta) -> &str {
    meta.namespace.as_deref().unwrap_or("default")
}

/// The plugin of an inline volume's source, if it is in-tree.
pub fn inline_plugin(translator: &Translator, volume: &Volume) -> Option<&'static PluginInfo> {
    if volume.cephfs.is_some() {
        return plugins::plugin_by_name(CEPHFS_PLUGIN_NAME);
    }
    translator
        .plugins()
        .find(|p| p.can_support_inline(volume))
        .and_then(|p| plugins::plugin_by_name(p.in_tree_plugin_name()))
}

/// The plugin of a PV's source, if it is in-tree (`pv` from [`PersistentVolume::to_k8s`]).
pub fn pv_plugin(
    translator: &Translator,
    pv: &k8s::PersistentVolume,
) -> Option<&'static PluginInfo> {
    if pv.spec.as_ref().is_some_and(|s| s.cephfs.is_some()) {
        return plugins::plugin_by_name(CEPHFS_PLUGIN_NAME);
    }
    translator
        .plugins()
        .find(|p| p.can_support(pv))
        .and_then(|p| plugins::plugin_by_name(p.in_tree_plugin_name()))
}

/// A PV's in-tree plugin and its translation (the CSI volume handle, or why not).
type Classified = Option<(&'static PluginInfo, Result<String, String>)>;

/// Finds the plugin of every PV and translates the in-tree ones, on every core; the
/// result is in the order of `pvs`.
fn classify_volumes(translator: &Translator, pvs: &[&PersistentVolume]) -> Vec<Classified> {
    let classify = |pv: &PersistentVolume| -> Classified {
        // The translator works on full k8s-openapi PVs: rebuild one, use it, drop it.
        let pv = pv.to_k8s();
        let plugin = pv_plugin(translator, &pv)?;
        Some((plugin, translate_pv(translator, plugin, &pv)))
    };
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    if threads < 2 || pvs.len() < 1024 {
        return pvs.iter().map(|pv| classify(pv)).collect();
    }
    let chunk = pvs.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = pvs
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(|pv| classify(pv)).collect::<Vec<_>>()))
            .collect();
        let mut out = Vec::with_capacity(pvs.len());
        for (handle, part) in handles.into_iter().zip(pvs.chunks(chunk)) {
            match handle.join() {
                Ok(mut done) => out.append(&mut done),
                // A panic in a worker is a bug; redo that part here so it surfaces normally.
                Err(_) => out.extend(part.iter().map(|pv| classify(pv))),
            }
        }
        out
    })
}

/// The CSI volume handle the translation gives an in-tree PV, or why there is none.
fn translate_pv(
    translator: &Translator,
    plugin: &PluginInfo,
    pv: &k8s::PersistentVolume,
) -> Result<String, String> {
    if !plugin.translatable {
        return Err(format!(
            "Kubernetes has no in-tree to CSI translation for {} and neither has csi-migrate",
            plugin.name
        ));
    }
    translator
        .pv_to_csi(pv)
        .map_err(|e| e.to_string())
        .and_then(|csi| {
            csi.spec
                .and_then(|s| s.csi)
                .map(|c| c.volume_handle)
                .ok_or_else(|| "translation produced no spec.csi".to_owned())
        })
}

/// Whether a StorageClass is marked default (either annotation, value `true`).
pub fn is_default_class(sc: &StorageClass) -> bool {
    sc.metadata.annotations.as_ref().is_some_and(|a| {
        [DEFAULT_CLASS_ANNOTATION, BETA_DEFAULT_CLASS_ANNOTATION]
            .iter()
            .any(|k| a.get(*k).is_some_and(|v| v == "true"))
    })
}

/// The storage class a PV names (field, then the beta annotation).
pub fn pv_class(pv: &PersistentVolume) -> Option<&str> {
    pv.spec
        .as_ref()
        .and_then(|s| s.storage_class_name.as_deref())
        .or_else(|| {
            pv.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(BETA_CLASS_ANNOTATION))
                .map(String::as_str)
        })
        .filter(|c| !c.is_empty())
}

/// The storage class a PVC names (field, then the beta annotation).
pub fn claim_class(pvc: &PersistentVolumeClaim) -> Option<&str> {
    pvc.spec
        .as_ref()
        .and_then(|s| s.storage_class_name.as_deref())
        .or_else(|| {
            pvc.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(BETA_CLASS_ANNOTATION))
                .map(String::as_str)
        })
        .filter(|c| !c.is_empty())
}

/// The controller owner reference of an object, if any.
pub fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .as_ref()?
        .iter()
        .find(|r| r.controller == Some(true))
}

/// Whether a label selector selects these labels. A missing selector selects nothing;
/// an empty one selects everything (policy/v1 semantics).
pub fn selector_matches(
    selector: Option<&LabelSelector>,
    labels: &BTreeMap<String, String>,
) -> bool {
    let Some(selector) = selector else {
        return false;
    };
    let labels_ok = selector
        .match_labels
        .as_ref()
        .is_none_or(|m| m.iter().all(|(k, v)| labels.get(k) == Some(v)));
    let expressions_ok = selector.match_expressions.as_ref().is_none_or(|exprs| {
        exprs.iter().all(|e| {
            let value = labels.get(&e.key);
            let values = e.values.as_deref().unwrap_or_default();
            match e.operator.as_str() {
                "In" => value.is_some_and(|v| values.contains(v)),
                "NotIn" => value.is_none_or(|v| !values.contains(v)),
                "Exists" => value.is_some(),
                "DoesNotExist" => value.is_none(),
                _ => false,
            }
        })
    });
    labels_ok && expressions_ok
}

/// The claims a pod template names in `persistentVolumeClaim` volumes (a template's
/// generic ephemeral volumes have no claim name until there is a pod).
fn template_claims(spec: &PodSpec) -> impl Iterator<Item = String> + '_ {
    spec.volumes
        .iter()
        .flatten()
        .filter_map(|v| v.persistent_volume_claim.as_ref())
        .map(|pvc| pvc.claim_name.clone())
}

/// Where a pod's claims come from: `persistentVolumeClaim` volumes and generic ephemeral
/// volumes (`<pod>-<volume>`).
fn pod_claims<'p>(
    spec: &'p crate::objects::PodSpec,
    pod_name: &'p str,
) -> impl Iterator<Item = String> + 'p {
    spec.volumes.iter().flatten().filter_map(move |volume| {
        if let Some(claim) = &volume.claim_name {
            Some(claim.clone())
        } else if volume.ephemeral {
            Some(format!("{pod_name}-{}", volume.name))
        } else {
            None
        }
    })
}

/// Identifies a workload while building the view.
type WorkloadKey<'a> = (WorkloadKind, &'a str, &'a str);

/// Workloads being collected, with an index by kind, namespace and name.
struct WorkloadSet<'a> {
    translator: Translator,
    workloads: Vec<Workload<'a>>,
    index: HashMap<WorkloadKey<'a>, usize>,
    inline_volumes: Vec<InlineVolume<'a>>,
}

impl<'a> WorkloadSet<'a> {
    /// [`Self::add`] for a controller: its pods' spec and labels come from `template`.
    fn add_templated(
        &mut self,
        kind: WorkloadKind,
        meta: &'a ObjectMeta,
        replicas: Option<i32>,
        template: Option<&'a PodTemplateSpec>,
        stateful_set: Option<&'a StatefulSet>,
    ) {
        let spec = template.and_then(|t| t.spec.as_ref());
        let labels = template
            .and_then(|t| t.metadata.as_ref())
            .and_then(|m| m.labels.as_ref());
        let volumes = spec.iter().flat_map(|s| s.volumes.iter().flatten());
        let claims = spec.into_iter().flat_map(template_claims).collect();
        self.add(kind, meta, replicas, volumes, claims, labels, stateful_set);
    }

    /// Adds a workload; `volumes` are those that may be inline in-tree volumes, `claims`
    /// the claims its pods name.
    #[allow(clippy::too_many_arguments)] // One call per kind; a struct would only rename them.
    fn add(
        &mut self,
        kind: WorkloadKind,
        meta: &'a ObjectMeta,
        replicas: Option<i32>,
        volumes: impl Iterator<Item = &'a Volume>,
        claims: BTreeSet<String>,
        pod_labels: Option<&'a BTreeMap<String, String>>,
        stateful_set: Option<&'a StatefulSet>,
    ) {
        let ns = namespace_of(meta);
        let object = ObjectRef::namespaced(kind.as_str(), ns, name_of(meta));
        let mut inline = Vec::new();
        for volume in volumes {
            if let Some(plugin) = inline_plugin(&self.translator, volume) {
                inline.push((volume.name.clone(), plugin));
                self.inline_volumes.push(InlineVolume {
                    owner: object.clone(),
                    namespace: ns,
                    volume,
                    plugin,
                });
            }
        }
        self.index
            .insert((kind, ns, name_of(meta)), self.workloads.len());
        self.workloads.push(Workload {
            kind,
            object,
            meta,
            namespace: ns,
            replicas,
            pod_labels,
            stateful_set,
            pods: Vec::new(),
            claims,
            in_tree_claims: BTreeSet::new(),
            inline_volumes: inline,
            in_tree_claim_templates: Vec::new(),
        });
    }
}

impl<'a> ClusterView<'a> {
    /// Indexes `snapshot`, keeping only what is in scope for `options`.
    pub fn new(snapshot: &'a ClusterSnapshot, options: &'a ScanOptions) -> Self {
        let translator = Translator::new();
        let namespace = options.namespace.as_deref();
        let in_scope = |meta: &ObjectMeta| namespace.is_none_or(|ns| namespace_of(meta) == ns);

        let storage_classes: HashMap<&str, &StorageClass> = snapshot
            .storage_classes
            .iter()
            .map(|sc| (name_of(&sc.metadata), sc))
            .collect();
        let mut default_classes: Vec<&StorageClass> = snapshot
            .storage_classes
            .iter()
            .filter(|sc| is_default_class(sc))
            .collect();
        default_classes.sort_by_key(|sc| name_of(&sc.metadata));

        let mut plugins_in_use = BTreeMap::new();
        for sc in &snapshot.storage_classes {
            if let Some(p) = plugins::plugin_by_name(&sc.provisioner) {
                plugins_in_use.insert(p.name, p);
            }
        }

        // PVs are cluster-scoped; with a namespace filter keep those claimed from it.
        let pv_in_scope = |pv: &PersistentVolume| {
            namespace.is_none_or(|ns| {
                pv.spec
                    .as_ref()
                    .and_then(|s| s.claim_ref.as_ref())
                    .and_then(|c| c.namespace.as_deref())
                    == Some(ns)
            })
        };
        let in_scope_pvs: Vec<&PersistentVolume> = snapshot
            .persistent_volumes
            .iter()
            .filter(|pv| pv_in_scope(pv))
            .collect();
        // Classifying and translating is most of the work on a large cluster (the
        // translator copies every PV): spread it over the cores. Workloads are found
        // meanwhile on a thread of their own (they need nothing from the volumes or the
        // claim index), while this one also indexes the volumes and claims.
        let mut persistent_volumes =
            HashMap::with_capacity_and_hasher(in_scope_pvs.len(), Default::default());
        let mut in_tree_volumes = Vec::new();
        let mut in_tree_volume_index = HashMap::default();
        let mut claims = HashMap::with_capacity_and_hasher(
            snapshot.persistent_volume_claims.len(),
            Default::default(),
        );
        let mut in_tree_claims = Vec::new();
        let discovered = std::thread::scope(|scope| {
            let discovered = scope.spawn(|| discover_workloads(snapshot, translator, &in_scope));
            let classified = classify_volumes(&translator, &in_scope_pvs);
            for (pv, class) in in_scope_pvs.into_iter().zip(classified) {
                let name = name_of(&pv.metadata);
                persistent_volumes.insert(name, pv);
                let Some((plugin, translation)) = class else {
                    continue;
                };
                plugins_in_use.insert(plugin.name, plugin);
                in_tree_volume_index.insert(name, in_tree_volumes.len());
                in_tree_volumes.push(InTreeVolume {
                    pv,
                    plugin,
                    translation,
                });
            }
            for pvc in snapshot
                .persistent_volume_claims
                .iter()
                .filter(|c| in_scope(&c.metadata))
            {
                claims.insert((namespace_of(&pvc.metadata), name_of(&pvc.metadata)), pvc);
                let bound = pvc
                    .spec
                    .as_ref()
                    .and_then(|s| s.volume_name.as_deref())
                    .and_then(|v| in_tree_volume_index.get(v).copied());
                if let Some(index) = bound {
                    in_tree_claims.push((pvc, index));
                }
            }
            // A panic in the worker is a bug; find them again here so it surfaces normally.
            discovered
                .join()
                .unwrap_or_else(|_| discover_workloads(snapshot, translator, &in_scope))
        });

        let mut view = Self {
            snapshot,
            translator,
            server_version: None,
            namespace,
            storage_classes,
            default_classes,
            persistent_volumes,
            in_tree_volumes,
            in_tree_volume_index,
            claims,
            in_tree_claims,
            inline_volumes: Vec::new(),
            workloads: Vec::new(),
            nodes: snapshot
                .nodes
                .iter()
                .map(|n| (name_of(&n.metadata), n))
                .collect(),
            csi_nodes: snapshot
                .csi_nodes
                .iter()
                .map(|n| (name_of(&n.metadata), n))
                .collect(),
            csi_drivers: snapshot
                .csi_drivers
                .iter()
                .map(|d| name_of(&d.metadata))
                .collect(),
            secrets: snapshot
                .secrets
                .iter()
                .map(|s| (s.namespace.as_str(), s.name.as_str()))
                .collect(),
            pod_disruption_budgets: snapshot
                .pod_disruption_budgets
                .iter()
                .filter(|p| in_scope(&p.metadata))
                .collect(),
            plugins_in_use,
        };
        view.server_version = snapshot.server_version.or_else(|| view.newest_kubelet());
        view.build_workloads(discovered);
        for inline in &view.inline_volumes {
            view.plugins_in_use
                .insert(inline.plugin.name, inline.plugin);
        }
        view
    }

    /// Whether `kind` was collected (rules needing it are otherwise skipped).
    pub fn collected(&self, kind: ResourceKind) -> bool {
        self.snapshot.collected.contains(&kind)
    }

    fn newest_kubelet(&self) -> Option<ServerVersion> {
        self.snapshot
            .nodes
            .iter()
            .filter_map(|n| n.status.as_ref()?.node_info.as_ref())
            .filter_map(|i| ServerVersion::parse(&i.kubelet_version, VersionSource::Kubelet))
            .max()
    }

    /// The in-tree plugin of a StorageClass's provisioner, if it is one.
    pub fn class_plugin(&self, class: &str) -> Option<&'static PluginInfo> {
        plugins::plugin_by_name(&self.storage_classes.get(class)?.provisioner)
    }

    /// The class a claim template or claim without a class would get: the default class.
    pub fn default_class_name(&self) -> Option<&'a str> {
        self.default_classes.first().map(|sc| name_of(&sc.metadata))
    }

    /// The in-tree PV a claim is bound to.
    pub fn in_tree_volume_of_claim(
        &self,
        namespace: &str,
        claim: &str,
    ) -> Option<&InTreeVolume<'a>> {
        let pvc = self.claims.get(&(namespace, claim))?;
        let volume = pvc.spec.as_ref()?.volume_name.as_deref()?;
        self.in_tree_volumes
            .get(*self.in_tree_volume_index.get(volume)?)
    }

    fn build_workloads(&mut self, discovered: Discovered<'a>) {
        let Discovered {
            mut workloads,
            mut inline_volumes,
        } = discovered;

        // Keep only existing claims; mark in-tree ones; in-tree claim templates.
        let mut used_claims: HashSet<(&str, &str)> = HashSet::default();
        for w in &mut workloads {
            let namespace = w.namespace;
            w.claims
                .retain(|c| self.claims.contains_key(&(namespace, c.as_str())));
            for claim in &w.claims {
                if let Some(pvc) = self.claims.get(&(namespace, claim.as_str())) {
                    used_claims.insert((namespace_of(&pvc.metadata), name_of(&pvc.metadata)));
                }
                if self.in_tree_volume_of_claim(namespace, claim).is_some() {
                    w.in_tree_claims.insert(claim.clone());
                }
            }
            if let Some(sts) = w.stateful_set {
                for template in sts.spec.volume_claim_templates.iter().flatten() {
                    let class = template
                        .spec
                        .as_ref()
                        .and_then(|s| s.storage_class_name.as_deref())
                        .or_else(|| {
                            template
                                .metadata
                                .annotations
                                .as_ref()
                                .and_then(|a| a.get(BETA_CLASS_ANNOTATION))
                                .map(String::as_str)
                        });
                    let class = match class {
                        Some("") => continue,
                        Some(c) => c,
                        None => match self.default_class_name() {
                            Some(c) => c,
                            None => continue,
                        },
                    };
                    if let Some(plugin) = self.class_plugin(class) {
                        w.in_tree_claim_templates.push((
                            name_of(&template.metadata).to_owned(),
                            class.to_owned(),
                            plugin,
                        ));
                    }
                }
            }
        }

        let mut workloads: Vec<Workload<'a>> = workloads
            .into_iter()
            .filter(Workload::uses_in_tree_storage)
            .collect();

        // Claims on in-tree PVs that no workload uses are workloads of their own.
        for (pvc, _) in &self.in_tree_claims {
            let ns = namespace_of(&pvc.metadata);
            let name = name_of(&pvc.metadata);
            if used_claims.contains(&(ns, name)) {
                continue;
            }
            let claim = BTreeSet::from([name.to_owned()]);
            workloads.push(Workload {
                kind: WorkloadKind::PersistentVolumeClaim,
                object: ObjectRef::namespaced("PersistentVolumeClaim", ns, name),
                meta: &pvc.metadata,
                namespace: ns,
                replicas: None,
                pod_labels: None,
                stateful_set: None,
                pods: Vec::new(),
                claims: claim.clone(),
                in_tree_claims: claim,
                inline_volumes: Vec::new(),
                in_tree_claim_templates: Vec::new(),
            });
        }
        for w in &mut workloads {
            w.pods.sort_by_key(|p| name_of(&p.metadata));
        }
        workloads.sort_by(|a, b| a.object.cmp(&b.object));
        inline_volumes.sort_by(|a, b| (&a.owner, &a.volume.name).cmp(&(&b.owner, &b.volume.name)));
        self.workloads = workloads;
        self.inline_volumes = inline_volumes;
    }
}

/// Workloads found in a snapshot, their pods and claims (not yet checked against the
/// claim index), and inline volumes: the part of the workload index that needs nothing
/// else from the view, so it is built while the volumes are classified.
struct Discovered<'a> {
    workloads: Vec<Workload<'a>>,
    inline_volumes: Vec<InlineVolume<'a>>,
}

fn discover_workloads<'a>(
    snapshot: &'a ClusterSnapshot,
    translator: Translator,
    in_scope: &(dyn Fn(&ObjectMeta) -> bool + Sync),
) -> Discovered<'a> {
    let mut found = WorkloadSet {
        translator,
        workloads: Vec::new(),
        index: HashMap::default(),
        inline_volumes: Vec::new(),
    };
    for sts in snapshot
        .stateful_sets
        .iter()
        .filter(|o| in_scope(&o.metadata))
    {
        found.add_templated(
            WorkloadKind::StatefulSet,
            &sts.metadata,
            Some(sts.spec.replicas.unwrap_or(1)),
            Some(&sts.spec.template),
            Some(sts),
        );
    }
    for d in snapshot
        .deployments
        .iter()
        .filter(|o| in_scope(&o.metadata))
    {
        found.add_templated(
            WorkloadKind::Deployment,
            &d.metadata,
            Some(d.spec.replicas.unwrap_or(1)),
            Some(&d.spec.template),
            None,
        );
    }
    for d in snapshot
        .daemon_sets
        .iter()
        .filter(|o| in_scope(&o.metadata))
    {
        found.add_templated(
            WorkloadKind::DaemonSet,
            &d.metadata,
            None,
            Some(&d.spec.template),
            None,
        );
    }
    for rs in snapshot
        .replica_sets
        .iter()
        .filter(|o| in_scope(&o.metadata))
    {
        if controller_of(&rs.metadata).is_some_and(|o| o.kind == "Deployment") {
            continue;
        }
        let spec = Some(&rs.spec);
        let template = spec.and_then(|s| s.template.as_ref());
        found.add_templated(
            WorkloadKind::ReplicaSet,
            &rs.metadata,
            Some(spec.and_then(|s| s.replicas).unwrap_or(1)),
            template,
            None,
        );
    }
    for cj in snapshot.cron_jobs.iter().filter(|o| in_scope(&o.metadata)) {
        let template = cj.spec.job_template.spec.as_ref().map(|s| &s.template);
        found.add_templated(WorkloadKind::CronJob, &cj.metadata, None, template, None);
    }
    for job in snapshot.jobs.iter().filter(|o| in_scope(&o.metadata)) {
        if controller_of(&job.metadata).is_some_and(|o| o.kind == "CronJob") {
            continue;
        }
        let template = job.spec.as_ref().map(|s| &s.template);
        found.add_templated(WorkloadKind::Job, &job.metadata, None, template, None);
    }

    // Owner chains: ReplicaSet → Deployment, Job → CronJob.
    let rs_owner: HashMap<(&str, &str), &str> = snapshot
        .replica_sets
        .iter()
        .filter_map(|rs| {
            let owner = controller_of(&rs.metadata).filter(|o| o.kind == "Deployment")?;
            Some((
                (namespace_of(&rs.metadata), name_of(&rs.metadata)),
                owner.name.as_str(),
            ))
        })
        .collect();
    let job_owner: HashMap<(&str, &str), &str> = snapshot
        .jobs
        .iter()
        .filter_map(|job| {
            let owner = controller_of(&job.metadata).filter(|o| o.kind == "CronJob")?;
            Some((
                (namespace_of(&job.metadata), name_of(&job.metadata)),
                owner.name.as_str(),
            ))
        })
        .collect();

    for pod in snapshot.pods.iter().filter(|o| in_scope(&o.metadata)) {
        let ns = namespace_of(&pod.metadata);
        let owner = controller_of(&pod.metadata).and_then(|o| {
            let name = o.name.as_str();
            let key = match o.kind.as_str() {
                "StatefulSet" => (WorkloadKind::StatefulSet, ns, name),
                "DaemonSet" => (WorkloadKind::DaemonSet, ns, name),
                "ReplicaSet" => match rs_owner.get(&(ns, name)) {
                    Some(deployment) => (WorkloadKind::Deployment, ns, *deployment),
                    None => (WorkloadKind::ReplicaSet, ns, name),
                },
                "Job" => match job_owner.get(&(ns, name)) {
                    Some(cron_job) => (WorkloadKind::CronJob, ns, *cron_job),
                    None => (WorkloadKind::Job, ns, name),
                },
                _ => return None,
            };
            found.index.get(&key).copied()
        });
        match owner {
            Some(i) => {
                let workload = &mut found.workloads[i];
                workload.pods.push(pod);
                if let Some(spec) = &pod.spec {
                    workload
                        .claims
                        .extend(pod_claims(spec, name_of(&pod.metadata)));
                }
            }
            None => {
                let volumes = pod
                    .spec
                    .iter()
                    .flat_map(|s| s.volumes.iter().flatten())
                    .filter_map(|v| v.full.as_deref());
                let claims = pod
                    .spec
                    .iter()
                    .flat_map(|s| pod_claims(s, name_of(&pod.metadata)))
                    .collect();
                found.add(
                    WorkloadKind::Pod,
                    &pod.metadata,
                    None,
                    volumes,
                    claims,
                    pod.metadata.labels.as_ref(),
                    None,
                );
                if let Some(last) = found.workloads.last_mut() {
                    last.pods.push(pod);
                }
            }
        }
    }

    let WorkloadSet {
        mut workloads,
        inline_volumes,
        ..
    } = found;

    // StatefulSet claims: `<template>-<set>-<ordinal>`, found by stripping the ordinal.
    // By namespace, then prefix, so that claims are looked up without allocating.
    let mut template_prefixes: HashMap<&str, HashMap<String, usize>> = HashMap::default();
    for (i, w) in workloads.iter().enumerate() {
        let Some(sts) = w.stateful_set else { continue };
        for template in sts.spec.volume_claim_templates.iter().flatten() {
            let template_name = name_of(&template.metadata);
            template_prefixes
                .entry(w.namespace)
                .or_default()
                .insert(format!("{template_name}-{}", name_of(w.meta)), i);
        }
    }
    if !template_prefixes.is_empty() {
        for pvc in snapshot
            .persistent_volume_claims
            .iter()
            .filter(|c| in_scope(&c.metadata))
        {
            let name = name_of(&pvc.metadata);
            let Some((prefix, ordinal)) = name.rsplit_once('-') else {
                continue;
            };
            if ordinal.is_empty() || !ordinal.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            if let Some(&i) = template_prefixes
                .get(namespace_of(&pvc.metadata))
                .and_then(|prefixes| prefixes.get(prefix))
            {
                workloads[i].claims.insert(name.to_owned());
            }
        }
    }
    Discovered {
        workloads,
        inline_volumes,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::rules::test_support::{ebs_pv, snapshot, vsphere_pv};

    #[test]
    fn volumes_classified_on_several_threads_keep_their_order() {
        // Enough PVs for the parallel path; every third is not translatable (no volumeID).
        let objects: Vec<serde_json::Value> = (0..3000)
            .map(|i| match i % 3 {
                0 => ebs_pv(&format!("ebs-{i:04}"), None),
                1 => vsphere_pv(&format!("vs-{i:04}")),
                _ => serde_json::json!({"apiVersion": "v1", "kind": "PersistentVolume",
                    "metadata": {"name": format!("bad-{i:04}")},
                    "spec": {"awsElasticBlockStore": {"volumeID": ""}}}),
            })
            .collect();
        let snapshot = snapshot(&objects);
        let pvs: Vec<&PersistentVolume> = snapshot.persistent_volumes.iter().collect();
        let translator = Translator::new();
        let parallel = classify_volumes(&translator, &pvs);
        assert_eq!(parallel.len(), pvs.len());
        for (pv, got) in pvs.iter().zip(&parallel) {
            let full = pv.to_k8s();
            let plugin = pv_plugin(&translator, &full);
            let want = plugin.map(|p| (p.name, translate_pv(&translator, p, &full)));
            assert_eq!(got.as_ref().map(|(p, t)| (p.name, t.clone())), want);
        }
    }
}
