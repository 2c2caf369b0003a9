//! The command line: every subcommand and flag, parsed by clap; no behaviour here.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

pub use crate::progress::ProgressFormat;

/// Move Kubernetes volumes off in-tree storage plugins onto CSI drivers, in place:
/// same disks, same claim names, no data copy.
#[derive(Debug, Parser)]
#[command(version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Translate StorageClasses, PersistentVolumes and Pods between in-tree and CSI form.
    ///
    /// Reads YAML or JSON (single objects, multi-document YAML, v1 Lists, `kubectl get -o
    /// json|yaml` output) from files or stdin, translates every StorageClass,
    /// PersistentVolume and Pod inline volume it can, and passes other objects through
    /// unchanged. A Pod with inline in-tree volumes is replaced by the CSI
    /// PersistentVolumes they map to. Exit code 2 if any object cannot be translated.
    ///
    /// With --jsonl, reads one request per line and writes one response per line:
    ///   {"op": "sc_to_csi"|"pv_to_csi"|"pv_to_intree"|"inline_to_csi", "object": {...},
    ///    "podNamespace": "ns"}  →  {"ok": true, "object": {...}} | {"ok": false, "error": "..."}
    #[command(verbatim_doc_comment)]
    Translate(TranslateArgs),

    /// Find everything still on in-tree volume plugins, and every blocker to migrating it.
    ///
    /// Reads the current kubeconfig context (read-only get/list; see
    /// deploy/scan/clusterrole.yaml), or dumps given with --from: YAML or JSON files,
    /// multi-document YAML, v1 Lists, `kubectl get … -o json|yaml` output, directories of
    /// them (add `kubectl version -o json` output for the server version). Without -n
    /// every namespace is scanned. Exit code 1 when a finding reaches --fail-on, 2 on bad
    /// input. The JSON report is documented in docs/scan-json.md.
    Scan(ScanArgs),

    /// Serve the admission webhook that keeps a cluster from sliding back to in-tree volumes.
    ///
    /// Certificate, key and policy files are re-read when they change. With cluster access
    /// the cluster's StorageClasses are watched so that claims are judged by their class's
    /// provisioner (--storage-classes). On SIGTERM: unready at once, serving on for
    /// --shutdown-delay, then a graceful stop. See deploy/webhook/.
    Webhook(WebhookArgs),

    /// Run the simulated cluster (kube-sim) until stopped, for trying csi-migrate safely.
    ///
    /// Writes a kubeconfig that kubectl and csi-migrate accept; point KUBECONFIG at it.
    Sim(SimArgs),

    /// Show the whole job on an embedded simulated cluster: scan, plan, and in-place
    /// migrations of 3-replica StatefulSets from kubernetes.io/aws-ebs to ebs.csi.aws.com
    /// and from kubernetes.io/vsphere-volume to csi.vsphere.vmware.com (onto first-class
    /// disk ids), checking that every disk keeps its data. Nothing outside this process is
    /// touched, except a local vCenter simulator (vcsim) the demo starts when one is built:
    /// then a third run registers the VMDKs with CNS through it.
    Demo(DemoArgs),

    /// Show the preflight and the exact steps of an in-place migration to CSI (read-only).
    ///
    /// Exit code 1 when preflight finds blockers (each names the object and field at fault).
    Plan(PlanArgs),

    /// Migrate a workload's volumes to native CSI PersistentVolumes in place (same disks, same claims).
    ///
    /// Backs up every object into --work-dir, then runs the plan one replica at a time,
    /// journaling each step; an interrupted run continues with `csi-migrate resume`.
    Migrate(MigrateArgs),

    /// Continue an interrupted migration from its work dir's journal.
    Resume(ResumeArgs),

    /// Restore the original in-tree objects (same disks) of a completed or interrupted
    /// migration from its work dir; run it again to continue an interrupted rollback.
    Rollback(ResumeArgs),

    /// Google Distributed Cloud's `preflight`: the same as `plan statefulset NAME -n NS
    /// --to-storageclass CSI`, after checking that the claims come from the in-tree class.
    Preflight(PreflightArgs),

    /// Google Distributed Cloud's `rolling-migration all`: the same as `migrate statefulset
    /// NAME -n NS --to-storageclass CSI --work-dir DIR`, after the same class check.
    RollingMigration(RollingMigrationArgs),
}

/// Which cluster to talk to, as with kubectl.
#[derive(Debug, Clone, clap::Args)]
pub struct ClusterArgs {
    /// Kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or in-cluster).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,

    /// Kubeconfig context (default: the current context).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
}

/// How to reach vCenter, to register vSphere VMDKs with CNS when no
/// CnsVSphereVolumeMigration object names their first-class disk id.
#[derive(Debug, Clone, clap::Args)]
pub struct VcenterArgs {
    /// vCenter URL (https://host[:port]); overrides the --vsphere-config server.
    #[arg(long, value_name = "URL")]
    pub vcenter: Option<String>,

    /// vCenter user.
    #[arg(long, env = "VSPHERE_USER", value_name = "USER")]
    pub vcenter_user: Option<String>,

    /// vCenter password (prefer VSPHERE_PASSWORD or --vsphere-config: flags show in `ps`).
    #[arg(long, env = "VSPHERE_PASSWORD", hide_env_values = true, value_name = "PASSWORD",
          value_parser = parse_password)]
    pub vcenter_password: Option<csi_migrate_vsphere::Password>,

    /// The vSphere CSI driver's csi-vsphere.conf: its first [VirtualCenter "host"] section
    /// (user, password, port, insecure-flag, datacenters) and [Global] cluster-id.
    #[arg(long, value_name = "FILE")]
    pub vsphere_config: Option<PathBuf>,

    /// PEM CA bundle to trust for vCenter's certificate.
    #[arg(long, value_name = "FILE")]
    pub vcenter_ca: Option<PathBuf>,

    /// Accept any vCenter certificate (explicit opt-in; never the default).
    #[arg(long)]
    pub vcenter_insecure: bool,

    /// Datacenters searched for the datastores, comma-separated (default: the config's).
    #[arg(long, value_name = "DC,...", value_delimiter = ',')]
    pub vcenter_datacenters: Vec<String>,
}

fn parse_password(value: &str) -> Result<csi_migrate_vsphere::Password, std::convert::Infallible> {
    Ok(csi_migrate_vsphere::Password::new(value))
}

#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    #[command(subcommand)]
    pub workload: PlanWorkload,
}

#[derive(Debug, Subcommand)]
pub enum PlanWorkload {
    /// A StatefulSet, migrated rolling: one replica at a time.
    #[command(alias = "sts")]
    Statefulset(PlanTargetArgs),
    /// A Deployment: scaled to zero, its in-tree claims replaced, scaled back (downtime).
    #[command(alias = "deploy")]
    Deployment(PlanTargetArgs),
    /// One claim: unused, or with the bare pods using it recreated (--allow-downtime).
    #[command(alias = "persistentvolumeclaim")]
    Pvc(PlanTargetArgs),
}

#[derive(Debug, clap::Args)]
pub struct PlanTargetArgs {
    /// The StatefulSets, Deployments or claims (or select them with -l).
    #[arg(value_name = "NAME", required_unless_present = "selector")]
    pub names: Vec<String>,

    /// Select them by label instead, as `kubectl -l` (`app=shop,tier!=cache`).
    #[arg(short = 'l', long, value_name = "SELECTOR", conflicts_with = "names")]
    pub selector: Option<String>,

    /// Its namespace.
    #[arg(short = 'n', long, value_name = "NS", default_value = "default")]
    pub namespace: String,

    /// The CSI StorageClass the volumes move to.
    #[arg(long = "to-storageclass", value_name = "SC")]
    pub to_storageclass: String,

    /// Accept downtime: a single-replica StatefulSet, a Deployment (scaled to zero), or the
    /// bare pods using a claim (deleted and recreated).
    #[arg(long)]
    pub allow_downtime: bool,

    /// Reclaim policy of the new PVs, set once they are Bound (default: each old PV's own).
    #[arg(long, value_enum, value_name = "POLICY")]
    pub reclaim_policy: Option<ReclaimPolicyArg>,

    /// GCP project for GCE PD handles (translation leaves it `UNSPECIFIED`, which a native
    /// CSI PV cannot carry).
    #[arg(long, value_name = "PROJECT")]
    pub gce_project: Option<String>,

    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = PlanOutput::Table)]
    pub output: PlanOutput,

    #[command(flatten)]
    pub cluster: ClusterArgs,

    #[command(flatten)]
    pub vcenter: VcenterArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanOutput {
    /// Readable summary: volumes, warnings, numbered steps.
    Table,
    /// The plan as stored in plan.json (schema csi-migrate.plan/v1).
    Json,
    /// The same as YAML.
    Yaml,
}

#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    #[command(subcommand)]
    pub workload: MigrateWorkload,

    /// Progress: text (bars on a terminal, plain lines otherwise) or json (one event per
    /// line on stdout, docs/migrate-events.md).
    #[arg(short = 'o', long, value_enum, global = true, default_value_t = ProgressFormat::Text)]
    pub output: ProgressFormat,
}

#[derive(Debug, Subcommand)]
pub enum MigrateWorkload {
    /// A StatefulSet, migrated rolling: one replica at a time.
    #[command(alias = "sts")]
    Statefulset(MigrateTargetArgs),
    /// A Deployment: scaled to zero, its in-tree claims replaced, scaled back (downtime).
    #[command(alias = "deploy")]
    Deployment(MigrateTargetArgs),
    /// One claim: unused, or with the bare pods using it recreated (--allow-downtime).
    #[command(alias = "persistentvolumeclaim")]
    Pvc(MigrateTargetArgs),
}

#[derive(Debug, clap::Args)]
pub struct MigrateTargetArgs {
    /// The StatefulSets, Deployments or claims (or select them with -l).
    #[arg(value_name = "NAME", required_unless_present = "selector")]
    pub names: Vec<String>,

    /// Select them by label instead, as `kubectl -l` (`app=shop,tier!=cache`).
    #[arg(short = 'l', long, value_name = "SELECTOR", conflicts_with = "names")]
    pub selector: Option<String>,

    /// With several workloads: how many migrate at once (each in DIR/<kind>-<name>).
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,

    /// Its namespace.
    #[arg(short = 'n', long, value_name = "NS", default_value = "default")]
    pub namespace: String,

    /// The CSI StorageClass the volumes move to.
    #[arg(long = "to-storageclass", value_name = "SC")]
    pub to_storageclass: String,

    /// Directory for the lock, backups, plan and journal (created; must not hold a run);
    /// with several workloads, one subdirectory DIR/<kind>-<name> each.
    #[arg(long, value_name = "DIR")]
    pub work_dir: PathBuf,

    /// Run the preflight and show the plan; write nothing to the cluster or the work dir.
    #[arg(long)]
    pub dry_run: bool,

    /// Do not ask for confirmation (required when stdin is not a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,

    /// Accept downtime: a single-replica StatefulSet, a Deployment (scaled to zero), or the
    /// bare pods using a claim (deleted and recreated).
    #[arg(long)]
    pub allow_downtime: bool,

    /// Reclaim policy of the new PVs, set once they are Bound (default: each old PV's own).
    #[arg(long, value_enum, value_name = "POLICY")]
    pub reclaim_policy: Option<ReclaimPolicyArg>,

    /// GCP project for GCE PD handles (translation leaves it `UNSPECIFIED`, which a native
    /// CSI PV cannot carry).
    #[arg(long, value_name = "PROJECT")]
    pub gce_project: Option<String>,

    /// Longest any single wait (pod gone, claim Bound, pod Ready…) may take, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub timeout: u64,

    #[command(flatten)]
    pub cluster: ClusterArgs,

    #[command(flatten)]
    pub vcenter: VcenterArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReclaimPolicyArg {
    /// Keep the disk when the claim is deleted.
    #[value(name = "Retain", alias = "retain")]
    Retain,
    /// Delete the disk when the claim is deleted.
    #[value(name = "Delete", alias = "delete")]
    Delete,
}

#[derive(Debug, clap::Args)]
pub struct ResumeArgs {
    /// The work dir of the run (or of several: every DIR/<kind>-<name> holding a plan).
    #[arg(long, value_name = "DIR")]
    pub work_dir: PathBuf,

    /// With several runs in the work dir: how many continue at once.
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,

    /// Longest any single wait may take, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub timeout: u64,

    /// Progress: text (bars on a terminal, plain lines otherwise) or json (one event per
    /// line on stdout, docs/migrate-events.md).
    #[arg(short = 'o', long, value_enum, default_value_t = ProgressFormat::Text)]
    pub output: ProgressFormat,

    #[command(flatten)]
    pub cluster: ClusterArgs,
}

#[derive(Debug, clap::Args)]
pub struct WebhookArgs {
    /// PEM certificate (chain) the webhook serves.
    #[arg(long, value_name = "FILE")]
    pub tls_cert: PathBuf,

    /// PEM private key of the certificate.
    #[arg(long, value_name = "FILE")]
    pub tls_key: PathBuf,

    /// Address for AdmissionReviews and health checks.
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:8443")]
    pub listen: SocketAddr,

    /// Address for Prometheus metrics (plain HTTP); none when unset.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,

    /// Policy file (YAML): per-rule deny|warn|allow and namespace exemptions. Default: warn.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,

    /// Where claims' StorageClasses are looked up: cluster (list+watch every StorageClass
    /// through --kubeconfig/--context, $KUBECONFIG, ~/.kube/config or the pod's in-cluster
    /// config; /readyz is 503 until the first list), policy (only the policy's
    /// inTreeStorageClasses names; no API access), or auto (cluster when --kubeconfig or
    /// --context is given or when running in a pod, else policy).
    #[arg(long, value_enum, value_name = "SOURCE", default_value_t = ClassSource::Auto)]
    pub storage_classes: ClassSource,

    /// After SIGTERM, keep serving this long with /readyz answering 503 before closing the
    /// listener, so that the pod leaves the Service's endpoints first (e.g. 5s, 500ms).
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub shutdown_delay: std::time::Duration,

    /// Log format on stderr: text (colour only on a terminal) or json (one object per line).
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// Where the webhook looks up StorageClasses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ClassSource {
    /// cluster when a kubeconfig or context is named or when running in a pod, else policy.
    Auto,
    /// Watch the cluster's StorageClasses (needs get/list/watch on storageclasses).
    Cluster,
    /// The policy's inTreeStorageClasses names only; never contact the API server.
    Policy,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line (for pod logs).
    Json,
}

/// `5s`, `500ms`, `2m` or a plain number of seconds.
fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 5s, 500ms or 2m"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("{text:?}: unknown unit {unit:?} (use ms, s or m)")),
    };
    std::time::Duration::try_from_secs_f64(seconds).map_err(|e| format!("{text:?}: {e}"))
}

#[derive(Debug, clap::Args)]
pub struct SimArgs {
    /// Address to serve the API on; port 0 picks a free port.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:6443")]
    pub listen: SocketAddr,

    /// Serve HTTPS with a fresh CA (written into the kubeconfig).
    #[arg(long)]
    pub tls: bool,

    /// Where to write the kubeconfig; stdout when unset.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig_out: Option<PathBuf>,

    /// Starting state: empty, vsphere-statefulset, ebs-statefulset, mixed (every in-tree
    /// plugin) or every-rule (objects that trip every scan rule). Workloads are Running
    /// and their disks hold data when the kubeconfig appears.
    #[arg(long, value_name = "NAME", default_value = "empty",
          value_parser = ["empty", "vsphere-statefulset", "ebs-statefulset", "mixed", "every-rule"])]
    pub scenario: String,

    /// Faults to inject, as JSON or @FILE: {"latencyMs", "errors": [{"verb", "resource",
    /// "code", "rate"}], "failNthWrite", "dropRate", "dropWatchAfterEvents"}. Also settable
    /// at run time with PUT /_sim/v1/faults.
    #[arg(long, value_name = "JSON|@FILE")]
    pub faults: Option<String>,

    /// Seed of the injected faults' random choices.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub seed: u64,

    /// Keep the cluster in this file: loaded at start when it exists (instead of the
    /// scenario), saved every second while it changes and at shutdown.
    #[arg(long, value_name = "FILE")]
    pub state_file: Option<PathBuf>,

    /// How late the controllers' informer caches apply each change, to exercise stale caches and races.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub controller_lag_ms: u64,

    /// Watch events kept for resuming watches; older resourceVersions get 410 Expired.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub watch_history: usize,

    /// Keep the bytes of vSphere disks on datastore NAME as VMDK files under DIR (e.g. a
    /// vCenter simulator's datastore directory). Repeatable.
    #[arg(long, value_name = "NAME=DIR")]
    pub vsphere_datastore: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct TranslateArgs {
    /// File to read; `-` is stdin (default). Repeatable.
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// Direction of the translation.
    #[arg(long, value_enum, default_value_t = Target::Csi)]
    pub to: Target,

    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Yaml, conflicts_with = "jsonl")]
    pub output: OutputFormat,

    /// Answer JSON Lines requests (one per input line, streaming) instead of translating manifests.
    #[arg(long, conflicts_with = "to")]
    pub jsonl: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Target {
    /// In-tree objects to CSI objects.
    Csi,
    /// CSI PersistentVolumes back to in-tree ones (rollback).
    Intree,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// YAML documents separated by `---`.
    Yaml,
    /// One JSON object, or a v1 List when there are several.
    Json,
}

#[derive(Debug, clap::Args)]
pub struct ScanArgs {
    /// Read a dump instead of a cluster: a file, a directory (recursively), or `-` for stdin. Repeatable.
    #[arg(long = "from", value_name = "DIR|FILE")]
    pub from: Vec<PathBuf>,

    /// Only this namespace (cluster-scoped objects are still read; PVs by their claim's namespace).
    #[arg(
        short = 'n',
        long,
        value_name = "NS",
        conflicts_with = "all_namespaces"
    )]
    pub namespace: Option<String>,

    /// Every namespace (the default).
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,

    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = ScanOutput::Table)]
    pub output: ScanOutput,

    /// Exit with code 1 when a finding of this severity or worse exists.
    #[arg(long, value_enum, default_value_t = FailOn::Blocker)]
    pub fail_on: FailOn,

    /// Kubernetes version of the scanned cluster (e.g. 1.31), for dumps that lack `kubectl version` output.
    #[arg(long, value_name = "VERSION")]
    pub server_version: Option<String>,

    /// Kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or in-cluster).
    #[arg(long, value_name = "FILE", conflicts_with = "from")]
    pub kubeconfig: Option<PathBuf>,

    /// Kubeconfig context (default: the current context).
    #[arg(long, value_name = "NAME", conflicts_with = "from")]
    pub context: Option<String>,

    /// With --vcenter: also check every vSphere PV's datastore and VMDK, the in-tree
    /// classes' storage policies and the vCenter version.
    #[command(flatten)]
    pub vcenter: VcenterArgs,
}

/// `csi-migrate demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// The vCenter simulator binary for the vSphere-through-vCenter run (built by
    /// scripts/build-vcsim; default: $CSI_MIGRATE_VCSIM, else `vcsim/vcsim` next to the
    /// build directory of this binary, when it exists).
    #[arg(long, value_name = "PATH", conflicts_with = "no_vcsim")]
    pub vcsim: Option<PathBuf>,

    /// Skip the vSphere-through-vCenter run even when a simulator is found.
    #[arg(long)]
    pub no_vcsim: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScanOutput {
    /// Grouped, readable on an 80-column terminal.
    Table,
    /// The documented report (schema csi-migrate.scan/v1).
    Json,
    /// A report to attach to a change request.
    Markdown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    /// Exit 1 if there is any blocker.
    Blocker,
    /// Exit 1 if there is any blocker or warning.
    Warning,
    /// Always exit 0 after a successful scan.
    Never,
}

/// The StatefulSet and classes as Google Distributed Cloud's migration tool names them.
#[derive(Debug, clap::Args)]
pub struct GdcStatefulSetArgs {
    /// The StatefulSet.
    #[arg(long, value_name = "NAME")]
    pub sts_name: String,

    /// Its namespace.
    #[arg(long, value_name = "NS", default_value = "default")]
    pub sts_namespace: String,

    /// The in-tree StorageClass its claims must come from.
    #[arg(long, value_name = "SC")]
    pub intree_storageclass: String,

    /// The CSI StorageClass the volumes move to.
    #[arg(long, value_name = "SC")]
    pub csi_storageclass: String,
}

#[derive(Debug, clap::Args)]
pub struct PreflightArgs {
    #[command(flatten)]
    pub target: GdcStatefulSetArgs,

    #[command(flatten)]
    pub cluster: ClusterArgs,

    #[command(flatten)]
    pub vcenter: VcenterArgs,
}

#[derive(Debug, clap::Args)]
pub struct RollingMigrationArgs {
    /// What to migrate: `all` replicas, one at a time.
    #[arg(value_parser = ["all"])]
    pub scope: String,

    #[command(flatten)]
    pub target: GdcStatefulSetArgs,

    /// Directory for the lock, backups, plan and journal.
    #[arg(long, value_name = "DIR")]
    pub working_directory: PathBuf,

    /// Do not ask for confirmation (required when stdin is not a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,

    #[command(flatten)]
    pub cluster: ClusterArgs,

    #[command(flatten)]
    pub vcenter: VcenterArgs,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::time::Duration;

    #[test]
    fn durations() {
        for (text, want) in [
            ("5s", Duration::from_secs(5)),
            ("5", Duration::from_secs(5)),
            ("0", Duration::ZERO),
            ("500ms", Duration::from_millis(500)),
            ("1.5s", Duration::from_millis(1500)),
            ("2m", Duration::from_secs(120)),
        ] {
            assert_eq!(parse_duration(text).unwrap(), want, "{text}");
        }
        for bad in ["", "s", "5h", "-1s", "fast"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn webhook_flags() {
        let cli = Cli::try_parse_from([
            "csi-migrate",
            "webhook",
            "--tls-cert=c",
            "--tls-key=k",
            "--storage-classes=cluster",
            "--kubeconfig=/kc",
            "--shutdown-delay=250ms",
            "--log-format=json",
        ])
        .unwrap();
        let Command::Webhook(args) = cli.command else {
            panic!("not the webhook command")
        };
        assert_eq!(args.storage_classes, ClassSource::Cluster);
        assert_eq!(args.shutdown_delay, Duration::from_millis(250));
        assert_eq!(args.log_format, LogFormat::Json);
        assert_eq!(args.cluster.kubeconfig, Some(PathBuf::from("/kc")));
        let defaults =
            Cli::try_parse_from(["csi-migrate", "webhook", "--tls-cert=c", "--tls-key=k"]).unwrap();
        let Command::Webhook(args) = defaults.command else {
            panic!("not the webhook command")
        };
        assert_eq!(args.storage_classes, ClassSource::Auto);
        assert_eq!(args.shutdown_delay, Duration::from_secs(5));
        assert_eq!(args.log_format, LogFormat::Text);
    }
}
