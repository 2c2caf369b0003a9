//! End-to-end tests that drive the real `csi-migrate` binary.

#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_csi-migrate");

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Runs the binary with `args`, feeding `stdin`.
fn run(args: &[&str], stdin: &str) -> Output {
    run_bin(BIN, args, stdin)
}

fn run_bin(bin: impl AsRef<std::ffi::OsStr>, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(bin)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let stdin = stdin.to_owned();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(stdin.as_bytes());
    });
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    output
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

mod translate {
    use super::*;

    #[test]
    fn multi_document_yaml_is_translated_object_by_object() {
        let out = run(
            &[
                "translate",
                "-f",
                fixture("intree-mixed.yaml").to_str().unwrap(),
            ],
            "",
        );
        assert!(out.status.success(), "{}", stderr(&out));
        insta::assert_snapshot!("intree_mixed_to_csi", stdout(&out));
    }

    #[test]
    fn stdin_is_read_when_no_file_or_dash_is_given() {
        let yaml = std::fs::read_to_string(fixture("intree-mixed.yaml")).unwrap();
        let from_stdin = run(&["translate"], &yaml);
        let from_dash = run(&["translate", "-f", "-"], &yaml);
        let from_file = run(
            &[
                "translate",
                "-f",
                fixture("intree-mixed.yaml").to_str().unwrap(),
            ],
            "",
        );
        assert!(from_stdin.status.success(), "{}", stderr(&from_stdin));
        assert_eq!(stdout(&from_stdin), stdout(&from_file));
        assert_eq!(stdout(&from_dash), stdout(&from_file));
    }

    #[test]
    fn kubectl_list_output_stays_a_list_with_translated_items() {
        let out = run(
            &[
                "translate",
                "-f",
                fixture("kubectl-get-pv.json").to_str().unwrap(),
                "-o",
                "json",
            ],
            "",
        );
        assert!(out.status.success(), "{}", stderr(&out));
        let list: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        assert_eq!(list["kind"], "List");
        let ebs = &list["items"][0];
        assert_eq!(ebs["spec"]["csi"]["volumeHandle"], "vol-0f00ba4");
        assert_eq!(ebs["spec"]["csi"]["fsType"], "xfs");
        assert_eq!(ebs["spec"]["claimRef"]["name"], "data-db-0");
        assert_eq!(ebs["status"]["phase"], "Bound");
        let term =
            &ebs["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0];
        assert_eq!(term["key"], "topology.ebs.csi.aws.com/zone");
        assert_eq!(term["values"][0], "eu-west-1b");
        assert_eq!(list["items"][1]["spec"]["nfs"]["server"], "nfs.local");
    }

    #[test]
    fn to_intree_reverses_a_csi_translation() {
        let csi = run(
            &[
                "translate",
                "-f",
                fixture("kubectl-get-pv.json").to_str().unwrap(),
            ],
            "",
        );
        let back = run(
            &["translate", "--to", "intree", "-o", "json"],
            &stdout(&csi),
        );
        assert!(back.status.success(), "{}", stderr(&back));
        let list: serde_json::Value = serde_json::from_str(&stdout(&back)).unwrap();
        let ebs = &list["items"][0]["spec"]["awsElasticBlockStore"];
        assert_eq!(ebs["volumeID"], "vol-0f00ba4");
        assert_eq!(ebs["fsType"], "xfs");
        assert!(list["items"][0]["spec"].get("csi").is_none());
    }

    #[test]
    fn untranslatable_object_fails_with_exit_2_naming_document_object_and_field() {
        let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: fine}\n---\n\
                    apiVersion: v1\nkind: PersistentVolume\nmetadata: {name: broken}\n\
                    spec:\n  azureDisk: {diskName: d, diskURI: /x, kind: Dedicated}\n";
        let out = run(&["translate"], yaml);
        assert_eq!(out.status.code(), Some(2));
        assert_eq!(stdout(&out), "", "nothing is written when an object fails");
        let err = stderr(&out);
        assert!(
            err.contains("<stdin> document 2: PersistentVolume \"broken\""),
            "{err}"
        );
        assert!(
            err.contains("kind(Dedicated) is not supported in csi migration (spec.azureDisk.kind)"),
            "{err}"
        );
    }

    #[test]
    fn malformed_field_is_named_with_its_path() {
        let yaml =
            "apiVersion: v1\nkind: PersistentVolume\nmetadata: {name: p}\nspec:\n  capacity: [1]\n";
        let out = run(&["translate"], yaml);
        assert_eq!(out.status.code(), Some(2));
        assert!(
            stderr(&out).contains("PersistentVolume \"p\": field spec.capacity:"),
            "{}",
            stderr(&out)
        );
    }

    #[test]
    fn invalid_yaml_and_missing_files_are_bad_input() {
        let out = run(&["translate"], "kind: [unclosed\n");
        assert_eq!(out.status.code(), Some(2));
        assert!(
            stderr(&out).contains("<stdin> is not valid YAML or JSON"),
            "{}",
            stderr(&out)
        );
        let out = run(&["translate", "-f", "/nonexistent/pv.yaml"], "");
        assert_eq!(out.status.code(), Some(2));
        assert!(
            stderr(&out).contains("cannot read /nonexistent/pv.yaml"),
            "{}",
            stderr(&out)
        );
    }

    #[test]
    fn unknown_flag_is_a_usage_error() {
        let out = run(&["translate", "--to", "sideways"], "");
        assert_eq!(out.status.code(), Some(2));
        assert!(stderr(&out).contains("sideways"));
    }
}

mod jsonl {
    use super::*;

    #[test]
    fn answers_one_line_per_request_in_order_and_survives_malformed_lines() {
        let requests = [
            r#"{"op":"pv_to_csi","object":{"apiVersion":"v1","kind":"PersistentVolume","metadata":{"name":"a"},"spec":{"portworxVolume":{"volumeID":"px-1"}}}}"#,
            "this is not json",
            r#"{"op":"sc_to_csi","object":{"apiVersion":"storage.k8s.io/v1","kind":"StorageClass","metadata":{"name":"s"},"provisioner":"kubernetes.io/portworx-volume","parameters":{"openstorage.io/auth-secret-name":"px"}}}"#,
            "",
            r#"{"op":"pv_to_intree","object":{"metadata":{"name":"c"},"spec":{"csi":{"driver":"pxd.portworx.com","volumeHandle":"px-2","readOnly":true}}}}"#,
            r#"{"op":"inline_to_csi","podNamespace":"ns","object":{"name":"v","rbd":{"monitors":["m1","m2"],"image":"img","secretRef":{"name":"s"}}}}"#,
        ];
        let out = run(&["translate", "--jsonl"], &(requests.join("\n") + "\n"));
        assert!(out.status.success(), "{}", stderr(&out));
        let lines: Vec<serde_json::Value> = stdout(&out)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), requests.len());
        assert_eq!(
            lines[0]["object"]["spec"]["csi"]["driver"],
            "pxd.portworx.com"
        );
        assert_eq!(lines[1]["ok"], false);
        assert_eq!(lines[2]["object"]["provisioner"], "pxd.portworx.com");
        assert_eq!(
            lines[2]["object"]["parameters"]["csi.storage.k8s.io/node-stage-secret-name"],
            "px"
        );
        assert_eq!(lines[3]["ok"], false);
        assert_eq!(
            lines[4]["object"]["spec"]["portworxVolume"]["readOnly"],
            true
        );
        let rbd = &lines[5]["object"]["spec"]["csi"];
        assert_eq!(
            rbd["nodeStageSecretRef"],
            serde_json::json!({"name": "s", "namespace": "ns"})
        );
        assert_eq!(rbd["volumeHandle"], "img");
    }

    #[test]
    fn answers_arrive_before_the_input_ends() {
        let mut child = Command::new(BIN)
            .args(["translate", "--jsonl"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        let mut output = child.stdout.take().unwrap();
        input
            .write_all(b"{\"op\":\"pv_to_csi\",\"object\":{\"metadata\":{\"name\":\"p\"},\"spec\":{\"cinder\":{\"volumeID\":\"v\"}}}}\n")
            .unwrap();
        input.flush().unwrap();
        // Read one response while stdin is still open: a buffering server would hang here.
        let mut got = Vec::new();
        let mut byte = [0u8; 1];
        while !got.ends_with(b"\n") {
            output.read_exact(&mut byte).unwrap();
            got.push(byte[0]);
        }
        assert!(String::from_utf8(got).unwrap().starts_with(r#"{"ok":true"#));
        drop(input);
        assert!(child.wait().unwrap().success());
    }
}

mod process {
    use super::*;

    #[test]
    fn closed_stdout_ends_quietly() {
        let line = r#"{"op":"pv_to_csi","object":{"metadata":{"name":"p"},"spec":{"cinder":{"volumeID":"v"}}}}"#;
        let manifest = "apiVersion: v1\nkind: PersistentVolume\nmetadata: {name: p}\n\
                        spec: {cinder: {volumeID: v}}\n---\n";
        let cases: [(&[&str], String); 2] = [
            (
                &["translate", "--jsonl"],
                format!("{line}\n").repeat(20_000),
            ),
            (&["translate"], manifest.repeat(20_000)),
        ];
        for (args, input) in cases {
            let mut child = Command::new(BIN)
                .args(args)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let mut stdin = child.stdin.take().unwrap();
            let writer = std::thread::spawn(move || {
                let _ = stdin.write_all(input.as_bytes());
            });
            let mut first = [0u8; 10];
            child
                .stdout
                .as_mut()
                .unwrap()
                .read_exact(&mut first)
                .unwrap();
            drop(child.stdout.take());
            let out = child.wait_with_output().unwrap();
            writer.join().unwrap();
            assert!(out.status.success(), "{args:?}: exit {:?}", out.status);
            assert_eq!(stderr(&out), "", "{args:?}");
        }
    }

    #[test]
    fn yaml_streams_beyond_the_parsers_default_budgets_are_translated() {
        // 1,500 documents: more than the YAML parser's default of 1,024.
        let manifest = "apiVersion: v1\nkind: PersistentVolume\nmetadata: {name: p}\n\
                        spec: {cinder: {volumeID: v}}\n---\n";
        let out = run(&["translate", "-o", "json"], &manifest.repeat(1_500));
        assert!(out.status.success(), "{}", stderr(&out));
        let list: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        let items = list["items"].as_array().unwrap();
        assert_eq!(items.len(), 1_500);
        assert!(
            items
                .iter()
                .all(|pv| pv["spec"]["csi"]["volumeHandle"] == "v")
        );
    }

    #[test]
    fn help_lists_the_commands_and_jsonl_protocol() {
        let out = run(&["--help"], "");
        assert!(out.status.success());
        assert!(stdout(&out).contains("translate"));
        let out = run(&["translate", "--help"], "");
        assert!(stdout(&out).contains("pv_to_intree"));
        assert!(stdout(&out).contains("--to <TO>"));
    }

    #[test]
    fn works_as_a_kubectl_plugin_under_its_plugin_name() {
        let dir = std::env::temp_dir().join(format!("csi-migrate-plugin-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let plugin = dir.join("kubectl-csi_migrate");
        let _ = std::fs::remove_file(&plugin);
        std::os::unix::fs::symlink(BIN, &plugin).unwrap();
        let out = run_bin(&plugin, &["--help"], "");
        assert!(out.status.success());
        assert!(
            stdout(&out).contains("Usage: kubectl csi-migrate"),
            "{}",
            stdout(&out)
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// `csi-migrate sim` driven by the real kubectl.
mod sim {
    use super::*;
    use std::time::{Duration, Instant};

    /// A running `csi-migrate sim`, stopped on drop (also used by `mod scan`).
    pub(crate) struct Sim {
        child: std::process::Child,
        dir: PathBuf,
        pub(crate) kubeconfig: PathBuf,
    }

    impl Sim {
        pub(crate) fn start(name: &str, extra: &[&str]) -> Self {
            let dir =
                std::env::temp_dir().join(format!("csi-migrate-sim-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let kubeconfig = dir.join("kubeconfig");
            let mut args = vec![
                "sim",
                "--listen",
                "127.0.0.1:0",
                "--kubeconfig-out",
                kubeconfig.to_str().unwrap(),
            ];
            args.extend_from_slice(extra);
            let child = Command::new(BIN)
                .args(&args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let deadline = Instant::now() + Duration::from_secs(20);
            while !kubeconfig.exists() {
                assert!(
                    Instant::now() < deadline,
                    "sim did not write its kubeconfig"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
            Self {
                child,
                dir,
                kubeconfig,
            }
        }

        /// Runs kubectl (which must be installed) against the simulator.
        pub(crate) fn kubectl(&self, args: &[&str]) -> Output {
            Command::new("kubectl")
                .args(args)
                .arg("--cache-dir")
                .arg(self.dir.join("cache"))
                .env("KUBECONFIG", &self.kubeconfig)
                .output()
                .expect("kubectl must be installed to run these tests (.ci/run installs it)")
        }

        pub(crate) fn kubectl_ok(&self, args: &[&str]) -> String {
            let out = self.kubectl(args);
            assert!(
                out.status.success(),
                "kubectl {args:?} failed: {}{}",
                stdout(&out),
                stderr(&out)
            );
            stdout(&out)
        }
    }

    impl Drop for Sim {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn repo_path(path: &str) -> String {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(path)
            .to_string_lossy()
            .into_owned()
    }

    #[test]
    fn scenarios_start_with_running_workloads_and_data_on_every_disk() {
        for (scenario, pods, disks) in [
            ("ebs-statefulset", 3, 3),
            ("vsphere-statefulset", 3, 3),
            ("mixed", 7, 14),
        ] {
            let sim = Sim::start(scenario, &["--scenario", scenario]);
            let phases = sim.kubectl_ok(&[
                "get",
                "pods",
                "-A",
                "-o",
                "jsonpath={.items[*].status.phase}",
            ]);
            let phases: Vec<&str> = phases.split_whitespace().collect();
            assert_eq!(phases.len(), pods, "{scenario}: {phases:?}");
            assert!(
                phases.iter().all(|p| *p == "Running"),
                "{scenario}: {phases:?}"
            );
            let listed: serde_json::Value =
                serde_json::from_str(&sim.kubectl_ok(&["get", "--raw", "/_sim/v1/disks"])).unwrap();
            let listed = listed["disks"].as_array().unwrap();
            assert_eq!(listed.len(), disks, "{scenario}");
            let empty_sha = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
            assert!(
                listed.iter().all(|d| d["sha256"] != empty_sha),
                "{scenario}: every disk holds data"
            );
            let claims = sim.kubectl_ok(&[
                "get",
                "pvc",
                "-A",
                "-o",
                "jsonpath={.items[*].status.phase}",
            ]);
            assert!(
                claims.split_whitespace().all(|p| p == "Bound"),
                "{scenario}: {claims}"
            );
        }
    }

    #[test]
    fn webhook_manifests_apply_cleanly_with_kubectl() {
        for tls in [false, true] {
            let sim = Sim::start(
                if tls { "apply-tls" } else { "apply" },
                if tls { &["--tls"] } else { &[] },
            );
            let manifests = repo_path("deploy/webhook");
            let first = sim.kubectl_ok(&["apply", "-f", &manifests]);
            assert!(
                first.contains("namespace/csi-migrate-system created"),
                "{first}"
            );
            assert!(first.contains("validatingwebhookconfiguration.admissionregistration.k8s.io/csi-migrate-webhook created"));
            for rbac in [
                "clusterrole.rbac.authorization.k8s.io/csi-migrate-webhook created",
                "clusterrolebinding.rbac.authorization.k8s.io/csi-migrate-webhook created",
            ] {
                assert!(first.contains(rbac), "{first}");
            }
            let second = sim.kubectl_ok(&["apply", "-f", &manifests]);
            assert!(
                second.contains("deployment.apps/csi-migrate-webhook unchanged"),
                "{second}"
            );
            let replicas = sim.kubectl_ok(&[
                "get",
                "deployment",
                "csi-migrate-webhook",
                "-n",
                "csi-migrate-system",
                "-o",
                "jsonpath={.spec.replicas}",
            ]);
            assert_eq!(replicas, "2");
            // The namespace controller may empty the Namespace before kubectl reaches the
            // objects listed after it, on a cluster as here: `--ignore-not-found`.
            sim.kubectl_ok(&[
                "delete",
                "-f",
                &manifests,
                "--ignore-not-found",
                "--wait=true",
                "--timeout=20s",
            ]);
            let gone = sim.kubectl(&["get", "namespace", "csi-migrate-system"]);
            assert!(!gone.status.success());
            assert!(
                stderr(&gone).contains("namespaces \"csi-migrate-system\" not found"),
                "{}",
                stderr(&gone)
            );
        }
    }

    #[test]
    fn kubectl_server_side_apply_and_claim_protection_wait() {
        let sim = Sim::start("ssa", &[]);
        let dir = std::env::temp_dir().join(format!("csi-migrate-ssa-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let manifests = dir.join("claim-and-pod.yaml");
        std::fs::write(
            &manifests,
            "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: data-0, namespace: default}\n\
             spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}\n---\n\
             apiVersion: v1\nkind: Pod\nmetadata: {name: app-0, namespace: default}\n\
             spec:\n  nodeName: node-1\n  containers: [{name: app, image: busybox}]\n\
             \x20 volumes: [{name: data, persistentVolumeClaim: {claimName: data-0}}]\n",
        )
        .unwrap();
        let applied =
            sim.kubectl_ok(&["apply", "--server-side", "-f", manifests.to_str().unwrap()]);
        assert!(
            applied.contains("persistentvolumeclaim/data-0 serverside-applied"),
            "{applied}"
        );
        let finalizers = sim.kubectl_ok(&[
            "get",
            "pvc",
            "data-0",
            "-o",
            "jsonpath={.metadata.finalizers}",
        ]);
        assert_eq!(finalizers, r#"["kubernetes.io/pvc-protection"]"#);

        // The claim stays terminating while a scheduled pod uses it.
        sim.kubectl_ok(&["delete", "pvc", "data-0", "--wait=false"]);
        std::thread::sleep(Duration::from_millis(800));
        let stamp = sim.kubectl_ok(&[
            "get",
            "pvc",
            "data-0",
            "-o",
            "jsonpath={.metadata.deletionTimestamp}",
        ]);
        assert!(!stamp.is_empty());
        let waiter = Command::new("kubectl")
            .args([
                "wait",
                "--for=delete",
                "pvc/data-0",
                "--timeout=20s",
                "--cache-dir",
            ])
            .arg(sim.dir.join("cache-wait"))
            .env("KUBECONFIG", &sim.kubeconfig)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(500));
        sim.kubectl_ok(&["delete", "pod", "app-0", "--grace-period=0", "--force"]);
        let waited = waiter.wait_with_output().unwrap();
        assert!(
            waited.status.success(),
            "kubectl wait: {}{}",
            stdout(&waited),
            stderr(&waited)
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
    /// Writes `text` to `name` in a fresh directory for this test and returns its path.
    fn manifest(test: &str, name: &str, text: &str) -> String {
        let dir = std::env::temp_dir().join(format!("csi-migrate-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.to_string_lossy().into_owned()
    }

    #[test]
    fn kubectl_server_side_apply_tracks_field_owners() {
        let sim = Sim::start("ssa-owners", &[]);
        let config = |labels: &str, value: &str| {
            format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: default\n  labels: {{{labels}}}\ndata: {{mode: {value}}}\n"
            )
        };
        let first = manifest(
            "ssa-owners",
            "first.yaml",
            &config("a: '1', b: '2'", "fast"),
        );
        sim.kubectl_ok(&["apply", "--server-side", "-f", &first]);
        let second = manifest(
            "ssa-owners",
            "second.yaml",
            &config("a: '1', c: '3'", "fast"),
        );
        sim.kubectl_ok(&["apply", "--server-side", "-f", &second]);
        let labels = sim.kubectl_ok(&[
            "get",
            "configmap",
            "settings",
            "-o",
            "jsonpath={.metadata.labels}",
        ]);
        assert_eq!(labels, r#"{"a":"1","c":"3"}"#);

        // Another manager changing a field kubectl owns conflicts, unless it forces.
        let other = manifest(
            "ssa-owners",
            "other.yaml",
            &config("a: '1', c: '3'", "slow"),
        );
        let refused = sim.kubectl(&[
            "apply",
            "--server-side",
            "--field-manager=operator",
            "-f",
            &other,
        ]);
        assert!(!refused.status.success());
        assert!(
            stderr(&refused)
                .contains(r#"Apply failed with 1 conflict: conflict with "kubectl": .data.mode"#),
            "{}",
            stderr(&refused)
        );
        sim.kubectl_ok(&[
            "apply",
            "--server-side",
            "--field-manager=operator",
            "--force-conflicts",
            "-f",
            &other,
        ]);
        let mode = sim.kubectl_ok(&[
            "get",
            "configmap",
            "settings",
            "-o",
            "jsonpath={.data.mode}",
        ]);
        assert_eq!(mode, "slow");
        let yaml = sim.kubectl_ok(&[
            "get",
            "configmap",
            "settings",
            "-o",
            "yaml",
            "--show-managed-fields",
        ]);
        assert!(yaml.contains("manager: kubectl"), "{yaml}");
        assert!(yaml.contains("manager: operator"), "{yaml}");
        assert!(yaml.contains("operation: Apply"), "{yaml}");
        assert!(yaml.contains("f:mode: {}"), "{yaml}");
    }

    #[test]
    fn kubectl_leaves_field_validation_to_the_server() {
        let sim = Sim::start("validation", &[]);
        let typo = manifest(
            "validation",
            "typo.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: typo, namespace: default}\ndta: {a: '1'}\n",
        );
        let refused = sim.kubectl(&["apply", "-f", &typo]);
        assert!(!refused.status.success());
        assert!(
            stderr(&refused).contains(r#"strict decoding error: unknown field "dta""#),
            "{}",
            stderr(&refused)
        );
        let warned = sim.kubectl(&["apply", "--validate=warn", "-f", &typo]);
        assert!(warned.status.success(), "{}", stderr(&warned));
        assert!(
            stderr(&warned).contains(r#"Warning: unknown field "dta""#),
            "{}",
            stderr(&warned)
        );
    }

    #[test]
    fn kubectl_scales_statefulsets_and_prints_the_server_columns() {
        let sim = Sim::start("tables", &["--scenario", "ebs-statefulset"]);
        let scaled = sim.kubectl_ok(&["scale", "statefulset", "web", "--replicas=2"]);
        assert!(scaled.contains("statefulset.apps/web scaled"), "{scaled}");
        let replicas = sim.kubectl_ok(&[
            "get",
            "statefulset",
            "web",
            "-o",
            "jsonpath={.spec.replicas}",
        ]);
        assert_eq!(replicas, "2");

        let header = |args: &[&str]| {
            let out = sim.kubectl_ok(args);
            let first = out.lines().next().unwrap_or_default().to_owned();
            first.split_whitespace().collect::<Vec<_>>().join(" ")
        };
        assert_eq!(
            header(&["get", "pv"]),
            "NAME CAPACITY ACCESS MODES RECLAIM POLICY STATUS CLAIM STORAGECLASS VOLUMEATTRIBUTESCLASS REASON AGE"
        );
        assert_eq!(
            header(&["get", "pvc", "-A"]),
            "NAMESPACE NAME STATUS VOLUME CAPACITY ACCESS MODES STORAGECLASS VOLUMEATTRIBUTESCLASS AGE"
        );
        assert_eq!(
            header(&["get", "pods", "-A"]),
            "NAMESPACE NAME READY STATUS RESTARTS AGE"
        );
        assert_eq!(
            header(&["get", "pods", "-A", "-o", "wide"]),
            "NAMESPACE NAME READY STATUS RESTARTS AGE IP NODE NOMINATED NODE READINESS GATES"
        );
        assert_eq!(header(&["get", "sts", "-A"]), "NAMESPACE NAME READY AGE");
        assert_eq!(
            header(&["get", "storageclass"]),
            "NAME PROVISIONER RECLAIMPOLICY VOLUMEBINDINGMODE ALLOWVOLUMEEXPANSION AGE"
        );
        let pvs = sim.kubectl_ok(&["get", "pv"]);
        assert!(
            pvs.lines()
                .skip(1)
                .all(|l| l.contains("RWO") && l.contains("Bound")),
            "{pvs}"
        );
        let everything = sim.kubectl_ok(&[
            "get",
            "pv,pvc,pods,sts,deploy,sc,volumeattachments,csinodes,nodes,ns,events",
            "-A",
        ]);
        assert!(everything.contains("persistentvolume/"), "{everything}");
        assert!(everything.contains("statefulset.apps/web"), "{everything}");

        // A watch prints the header and then rows from Table events.
        let mut watcher = Command::new("kubectl")
            .args(["get", "pods", "-n", "default", "-w", "--cache-dir"])
            .arg(sim.dir.join("cache-watch"))
            .env("KUBECONFIG", &sim.kubeconfig)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines =
            std::io::BufRead::lines(std::io::BufReader::new(watcher.stdout.take().unwrap()));
        let first = lines.next().unwrap().unwrap();
        let second = lines.next().unwrap().unwrap();
        let _ = watcher.kill();
        let _ = watcher.wait();
        assert!(first.starts_with("NAME"), "{first}");
        assert!(second.starts_with("web-"), "{second}");
    }

    #[test]
    fn kubectl_patch_json_merge_and_strategic() {
        let sim = Sim::start("patch", &[]);
        let deployment = manifest(
            "patch",
            "deployment.yaml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: api, namespace: default}\n\
             spec:\n  replicas: 1\n  selector: {matchLabels: {app: api}}\n  template:\n    metadata: {labels: {app: api}}\n\
             \x20   spec:\n      containers: [{name: app, image: 'app:1'}, {name: side, image: 'side:1'}]\n",
        );
        sim.kubectl_ok(&["apply", "-f", &deployment]);
        let get = |path: &str| {
            sim.kubectl_ok(&[
                "get",
                "deployment",
                "api",
                "-o",
                &format!("jsonpath={{{path}}}"),
            ])
        };
        sim.kubectl_ok(&[
            "patch",
            "deployment",
            "api",
            "--type=json",
            "-p",
            r#"[{"op": "replace", "path": "/spec/replicas", "value": 3}]"#,
        ]);
        assert_eq!(get(".spec.replicas"), "3");
        sim.kubectl_ok(&[
            "patch",
            "deployment",
            "api",
            "--type=merge",
            "-p",
            r#"{"metadata": {"labels": {"tier": "backend"}}}"#,
        ]);
        assert_eq!(get(".metadata.labels.tier"), "backend");
        sim.kubectl_ok(&[
            "patch",
            "deployment",
            "api",
            "--type=strategic",
            "-p",
            r#"{"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "app:2"}, {"name": "side", "$patch": "delete"}]}}}}"#,
        ]);
        assert_eq!(get(".spec.template.spec.containers[*].name"), "app");
        assert_eq!(get(".spec.template.spec.containers[0].image"), "app:2");
    }

    #[test]
    fn kubectl_waits_for_a_crd_to_be_established() {
        let sim = Sim::start("crd-wait", &[]);
        let crd = manifest(
            "crd-wait",
            "crd.yaml",
            "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: widgets.example.com}\n\
             spec:\n  group: example.com\n  scope: Namespaced\n  names: {plural: widgets, singular: widget, kind: Widget}\n\
             \x20 versions:\n  - name: v1\n    served: true\n    storage: true\n\
             \x20   schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}\n",
        );
        sim.kubectl_ok(&["apply", "-f", &crd]);
        let waited = sim.kubectl_ok(&[
            "wait",
            "--for=condition=Established",
            "crd/widgets.example.com",
            "--timeout=20s",
        ]);
        assert!(waited.contains("condition met"), "{waited}");
        let listed = sim.kubectl_ok(&["get", "crd"]);
        let header: Vec<&str> = listed.lines().next().unwrap().split_whitespace().collect();
        assert_eq!(header, ["NAME", "CREATED", "AT"]);
    }
}

mod scan {
    use std::collections::BTreeSet;

    use super::sim::Sim;
    use super::*;

    fn scan_fixture(name: &str) -> String {
        fixture("scan").join(name).to_str().unwrap().to_owned()
    }

    fn scan_json(args: &[&str]) -> (Output, serde_json::Value) {
        let mut all = vec!["scan", "-o", "json"];
        all.extend_from_slice(args);
        let out = run(&all, "");
        let json = serde_json::from_str(&stdout(&out))
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}{}", stdout(&out), stderr(&out)));
        (out, json)
    }

    fn codes(report: &serde_json::Value) -> BTreeSet<String> {
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["code"].as_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn the_every_rule_dump_trips_every_rule_and_exits_1() {
        let dir = scan_fixture("every-rule");
        let (out, report) = scan_json(&["--from", &dir]);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("--fail-on blocker"),
            "{}",
            stderr(&out)
        );
        assert_eq!(report["schemaVersion"], "csi-migrate.scan/v1");
        assert_eq!(report["serverVersion"]["minor"], 31);
        assert_eq!(report["serverVersion"]["source"], "apiServer");
        // RBD/CephFS removal is "upcoming" only below 1.31: the same dump as of 1.30.
        let (_, older) = scan_json(&["--from", &dir, "--server-version", "1.30"]);
        assert_eq!(older["serverVersion"]["source"], "user");
        let found: BTreeSet<String> = codes(&report).union(&codes(&older)).cloned().collect();
        // The vCenter rules need `scan --vcenter`; `mod vsphere` trips them.
        let every: BTreeSet<String> = csi_migrate_scan::rules::RULES
            .iter()
            .map(|r| r.code().to_owned())
            .filter(|code| !vsphere::VCENTER_CODES.contains(&code.as_str()))
            .collect();
        assert_eq!(
            every.difference(&found).collect::<Vec<_>>(),
            Vec::<&String>::new()
        );
        assert!(codes(&report).contains("PLUGIN_TRANSLATION_REMOVED"));
        assert!(!codes(&older).contains("PLUGIN_TRANSLATION_REMOVED"));

        // Summary counts agree with the lists.
        let findings = report["findings"].as_array().unwrap();
        let count = |s: &str| findings.iter().filter(|f| f["severity"] == s).count();
        assert_eq!(report["summary"]["blockers"], count("blocker"));
        assert_eq!(report["summary"]["warnings"], count("warning"));
        assert_eq!(report["summary"]["infos"], count("info"));
        assert_eq!(report["summary"]["inTreePersistentVolumes"], 9);
        assert_eq!(
            report["inventory"]["persistentVolumes"]
                .as_array()
                .unwrap()
                .len(),
            9
        );
        // Findings are sorted blockers first.
        let ranks: Vec<u8> = findings
            .iter()
            .map(|f| match f["severity"].as_str().unwrap() {
                "blocker" => 0,
                "warning" => 1,
                _ => 2,
            })
            .collect();
        assert!(ranks.windows(2).all(|w| w[0] <= w[1]));

        // One precise finding, and workload readiness built from the findings.
        let secret = findings
            .iter()
            .find(|f| f["code"] == "AZURE_FILE_SECRET_MISSING")
            .unwrap();
        assert_eq!(
            secret["object"],
            serde_json::json!({"kind": "PersistentVolume", "name": "af-share"})
        );
        assert!(
            secret["message"]
                .as_str()
                .unwrap()
                .contains("shop/missing-secret")
        );
        let workloads = report["workloads"].as_array().unwrap();
        let db = workloads
            .iter()
            .find(|w| w["workload"]["name"] == "db")
            .unwrap();
        assert_eq!(db["readiness"], "blocked");
        assert_eq!(
            db["inTreeClaims"],
            serde_json::json!(["data-db-0", "data-db-1"])
        );
        assert!(
            db["blockers"]
                .as_array()
                .unwrap()
                .contains(&"OWNED_BY_OPERATOR".into())
        );
        assert!(
            !db["blockers"]
                .as_array()
                .unwrap()
                .contains(&"CSI_DRIVER_MISSING".into())
        );
    }

    #[test]
    fn a_healthy_dump_passes_unless_warnings_fail() {
        let dir = scan_fixture("mixed");
        let (out, report) = scan_json(&["--from", &dir]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert!(stderr(&out).is_empty());
        assert_eq!(report["summary"]["blockers"], 0);
        assert_eq!(report["serverVersion"]["minor"], 30);
        let db = &report["workloads"][0];
        assert_eq!(db["workload"]["name"], "db");
        assert_eq!(db["readiness"], "ready");
        assert_eq!(db["replicas"], 3);
        // The Deployment on a CSI volume is not reported; the CSI PV is not in the inventory.
        assert_eq!(report["workloads"].as_array().unwrap().len(), 1);
        let pvs = report["inventory"]["persistentVolumes"].as_array().unwrap();
        assert_eq!(pvs.len(), 3);
        assert_eq!(pvs[0]["csiVolumeHandle"], "vol-00a1b2c");
        assert_eq!(pvs[0]["migratedTo"], "ebs.csi.aws.com");

        let strict = run(
            &["scan", "--from", &dir, "--fail-on", "warning", "-o", "json"],
            "",
        );
        assert_eq!(strict.status.code(), Some(1));
        let never = run(
            &[
                "scan",
                "--from",
                &scan_fixture("every-rule"),
                "--fail-on",
                "never",
            ],
            "",
        );
        assert_eq!(never.status.code(), Some(0), "{}", stderr(&never));
    }

    #[test]
    fn a_dump_without_drivers_and_nodes_says_which_checks_did_not_run() {
        let (_, report) = scan_json(&["--from", &scan_fixture("every-rule/workloads.yaml")]);
        let incomplete: Vec<&serde_json::Value> = report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["code"] == "INPUT_INCOMPLETE")
            .collect();
        let objects: Vec<&str> = incomplete
            .iter()
            .map(|f| f["object"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(objects, ["csidrivers", "csinodes", "nodes"]);
        assert!(
            incomplete[0]["message"]
                .as_str()
                .unwrap()
                .contains("CSI_DRIVER_MISSING")
        );
        assert!(!codes(&report).contains("CSI_DRIVER_MISSING"));
    }

    #[test]
    fn namespace_limits_namespaced_objects_and_pvs_by_their_claim() {
        let (_, report) = scan_json(&["--from", &scan_fixture("every-rule"), "-n", "data"]);
        assert_eq!(report["namespace"], "data");
        let workloads: Vec<&str> = report["workloads"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["workload"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(workloads, ["db"]);
        let pvs: Vec<&str> = report["inventory"]["persistentVolumes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(pvs, ["ebs-db-0", "ebs-db-1"]);
        let conflict = run(
            &["scan", "--from", &scan_fixture("mixed"), "-n", "x", "-A"],
            "",
        );
        assert_eq!(conflict.status.code(), Some(2));
    }

    #[test]
    fn stdin_and_files_give_the_same_report() {
        let file = scan_fixture("mixed/storage.json");
        let from_file = run(&["scan", "-o", "json", "--from", &file], "");
        let text = std::fs::read_to_string(&file).unwrap();
        let from_stdin = run(&["scan", "-o", "json", "--from", "-"], &text);
        assert_eq!(stdout(&from_file), stdout(&from_stdin));
        assert!(!stdout(&from_file).is_empty());
    }

    #[test]
    fn bad_input_exits_2_naming_the_file_object_and_field() {
        let dir = std::env::temp_dir().join(format!("csi-migrate-scan-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bad = dir.join("pv.yaml");
        std::fs::write(&bad, "kind: PersistentVolume\napiVersion: v1\nmetadata: {name: broken}\nspec: {accessModes: 5}\n").unwrap();
        let out = run(&["scan", "--from", bad.to_str().unwrap()], "");
        assert_eq!(out.status.code(), Some(2));
        let err = stderr(&out);
        assert!(
            err.contains("pv.yaml")
                && err.contains("\"broken\"")
                && err.contains("spec.accessModes"),
            "{err}"
        );
        assert!(stdout(&out).is_empty());

        let missing = run(
            &["scan", "--from", dir.join("nope.yaml").to_str().unwrap()],
            "",
        );
        assert_eq!(missing.status.code(), Some(2));
        let version = run(
            &[
                "scan",
                "--from",
                &scan_fixture("mixed"),
                "--server-version",
                "new",
            ],
            "",
        );
        assert_eq!(version.status.code(), Some(2));
        assert!(stderr(&version).contains("--server-version"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn table_output_fits_80_columns_without_colour_when_piped() {
        for dump in ["mixed", "every-rule"] {
            let out = run(
                &["scan", "--from", &scan_fixture(dump), "--fail-on", "never"],
                "",
            );
            let text = stdout(&out);
            assert!(!text.contains('\x1b'), "colour codes in piped output");
            for line in text.lines() {
                assert!(line.chars().count() <= 80, "{dump}: {line:?}");
            }
        }
    }

    #[test]
    fn table_snapshots() {
        let mixed = run(&["scan", "--from", &scan_fixture("mixed")], "");
        insta::assert_snapshot!("scan_table_mixed", stdout(&mixed));
        let every = run(&["scan", "--from", &scan_fixture("every-rule")], "");
        insta::assert_snapshot!("scan_table_every_rule", stdout(&every));
    }

    #[test]
    fn markdown_snapshot() {
        let out = run(
            &["scan", "--from", &scan_fixture("mixed"), "-o", "markdown"],
            "",
        );
        assert_eq!(out.status.code(), Some(0));
        insta::assert_snapshot!("scan_markdown_mixed", stdout(&out));
        let every = run(
            &[
                "scan",
                "--from",
                &scan_fixture("every-rule"),
                "-o",
                "markdown",
            ],
            "",
        );
        insta::assert_snapshot!("scan_markdown_every_rule", stdout(&every));
    }

    /// Every kind `scan` reads, with the API path that lists it across namespaces.
    const SCANNED_KINDS: [(&str, &str); 15] = [
        ("storageclasses", "/apis/storage.k8s.io/v1/storageclasses"),
        ("persistentvolumes", "/api/v1/persistentvolumes"),
        ("persistentvolumeclaims", "/api/v1/persistentvolumeclaims"),
        ("pods", "/api/v1/pods"),
        ("statefulsets", "/apis/apps/v1/statefulsets"),
        ("deployments", "/apis/apps/v1/deployments"),
        ("daemonsets", "/apis/apps/v1/daemonsets"),
        ("replicasets", "/apis/apps/v1/replicasets"),
        ("jobs", "/apis/batch/v1/jobs"),
        ("cronjobs", "/apis/batch/v1/cronjobs"),
        ("nodes", "/api/v1/nodes"),
        ("csidrivers", "/apis/storage.k8s.io/v1/csidrivers"),
        ("csinodes", "/apis/storage.k8s.io/v1/csinodes"),
        (
            "poddisruptionbudgets",
            "/apis/policy/v1/poddisruptionbudgets",
        ),
        ("secrets", "/api/v1/secrets"),
    ];

    /// A scratch directory for one test, removed first.
    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("csi-migrate-scan-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// `scan -o json` against the simulator, with extra arguments.
    fn scan_live(sim: &Sim, args: &[&str]) -> (Output, serde_json::Value) {
        let kubeconfig = sim.kubeconfig.to_str().unwrap().to_owned();
        let mut all = vec!["--kubeconfig", kubeconfig.as_str()];
        all.extend_from_slice(args);
        scan_json(&all)
    }

    /// `(kind, namespace/name)` of every finding with `code`.
    fn objects_with(report: &serde_json::Value, code: &str) -> Vec<(String, String)> {
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["code"] == code)
            .map(|f| {
                let o = &f["object"];
                let ns = o["namespace"]
                    .as_str()
                    .map(|n| format!("{n}/"))
                    .unwrap_or_default();
                (
                    o["kind"].as_str().unwrap().to_owned(),
                    format!("{ns}{}", o["name"].as_str().unwrap()),
                )
            })
            .collect()
    }

    fn names(items: &serde_json::Value, field: &str) -> Vec<String> {
        items
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i[field].as_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn live_scan_of_the_mixed_simulation_finds_every_in_tree_plugin() {
        let sim = Sim::start("scan-live", &["--scenario", "mixed"]);
        let (out, report) = scan_live(&sim, &["--fail-on", "never"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert_eq!(report["schemaVersion"], "csi-migrate.scan/v1");
        assert_eq!(report["serverVersion"]["source"], "apiServer");
        assert_eq!(report["serverVersion"]["major"], 1);
        assert!(report["namespace"].is_null());

        // PVs per plugin: web (3 vSphere), db (2 EBS), reports (GCE), one bare claim
        // per remaining plugin, the static Cinder PV and the Released Portworx PV.
        let mut per_plugin = std::collections::BTreeMap::new();
        for pv in report["inventory"]["persistentVolumes"].as_array().unwrap() {
            *per_plugin
                .entry(pv["plugin"].as_str().unwrap().to_owned())
                .or_insert(0) += 1;
        }
        let expected: std::collections::BTreeMap<String, i32> = [
            ("kubernetes.io/aws-ebs", 2),
            ("kubernetes.io/azure-disk", 1),
            ("kubernetes.io/azure-file", 1),
            ("kubernetes.io/cinder", 2),
            ("kubernetes.io/gce-pd", 1),
            ("kubernetes.io/portworx-volume", 2),
            ("kubernetes.io/rbd", 1),
            ("kubernetes.io/vsphere-volume", 3),
        ]
        .into_iter()
        .map(|(p, n)| (p.to_owned(), n))
        .collect();
        assert_eq!(per_plugin, expected);
        let summary = &report["summary"];
        assert_eq!(summary["inTreePersistentVolumes"], 13);
        assert_eq!(
            summary["inTreePersistentVolumeClaims"], 12,
            "all but the Released PV's"
        );
        assert_eq!(summary["inTreeInlineVolumes"], 1);
        assert_eq!(summary["inTreeStorageClasses"], 8);
        let every_pv_translated = report["inventory"]["persistentVolumes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|pv| pv["plugin"] != "kubernetes.io/rbd")
            .all(|pv| pv["csiVolumeHandle"].is_string());
        assert!(
            every_pv_translated,
            "{}",
            report["inventory"]["persistentVolumes"]
        );

        let workloads: BTreeSet<(String, String, String)> = report["workloads"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| {
                (
                    w["workload"]["kind"].as_str().unwrap().to_owned(),
                    w["workload"]["name"].as_str().unwrap().to_owned(),
                    w["readiness"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let want = |k: &str, n: &str, r: &str| (k.to_owned(), n.to_owned(), r.to_owned());
        for w in [
            want("StatefulSet", "web", "ready"),
            want("StatefulSet", "db", "ready"),
            want("Deployment", "reports", "ready"),
            want("Pod", "inline-azure", "manual"),
            want("PersistentVolumeClaim", "ceph", "blocked"),
            want("PersistentVolumeClaim", "shared-files", "blocked"),
            want("PersistentVolumeClaim", "legacy", "ready"),
        ] {
            assert!(workloads.contains(&w), "{w:?} not in {workloads:?}");
        }
        let web = report["workloads"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["workload"]["name"] == "web")
            .unwrap();
        assert_eq!(web["replicas"], 3);
        assert_eq!(web["inTreeClaims"].as_array().unwrap().len(), 3);
        assert_eq!(
            names(&report["inventory"]["claimTemplates"], "template").len(),
            2
        );

        // The simulator reports 1.3x: RBD is gone (blocker); the scenario's Azure File
        // claim has no account Secret; the Released PV and the unprotected StatefulSets.
        assert_eq!(
            objects_with(&report, "PLUGIN_TRANSLATION_REMOVED").len(),
            1,
            "{}",
            report["findings"]
        );
        assert_eq!(objects_with(&report, "AZURE_FILE_SECRET_MISSING").len(), 1);
        let released = objects_with(&report, "PV_RELEASED_OR_FAILED");
        assert_eq!(
            released,
            [(
                "PersistentVolume".to_owned(),
                "released-portworx".to_owned()
            )]
        );
        let no_pdb: BTreeSet<_> = objects_with(&report, "NO_PDB").into_iter().collect();
        assert!(no_pdb.contains(&("StatefulSet".to_owned(), "default/web".to_owned())));
        assert!(objects_with(&report, "INLINE_IN_TREE_VOLUME").len() == 1);
        // Every driver and CSINode is installed: nothing says otherwise, and nothing is
        // reported as not collected.
        for absent in [
            "CSI_DRIVER_MISSING",
            "CSI_DRIVER_NOT_ON_NODE",
            "INPUT_INCOMPLETE",
            "UNTRANSLATABLE_PV",
        ] {
            assert!(
                !codes(&report).contains(absent),
                "{absent}: {}",
                report["findings"]
            );
        }
        assert_eq!(summary["blockers"], 2);
    }

    #[test]
    fn a_kubectl_dump_of_the_simulation_gives_the_same_report_offline() {
        let sim = Sim::start("scan-dump", &["--scenario", "mixed"]);
        let (out, live) = scan_live(&sim, &["--fail-on", "never"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let dir = scratch("dump");

        // 1. Each kind listed on its own (`kubectl get --raw`): typed Lists, so even
        //    the kinds the cluster has none of (Secrets, PDBs) count as collected, and
        //    the report is identical to the live one, byte for byte.
        let per_kind = dir.join("per-kind");
        std::fs::create_dir_all(&per_kind).unwrap();
        for (plural, path) in SCANNED_KINDS {
            let list = sim.kubectl_ok(&["get", "--raw", path]);
            std::fs::write(per_kind.join(format!("{plural}.json")), list).unwrap();
        }
        std::fs::write(
            per_kind.join("version.json"),
            sim.kubectl_ok(&["version", "-o", "json"]),
        )
        .unwrap();
        let (out, offline) =
            scan_json(&["--from", per_kind.to_str().unwrap(), "--fail-on", "never"]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(offline, live);

        // 2. One `kubectl get a,b,c -A -o json`: an untyped `List`, in which a kind with
        //    no objects leaves no trace. Everything found is the same; the kinds the
        //    cluster has none of are reported as not collected (INPUT_INCOMPLETE) and
        //    the checks that need them did not run.
        let kinds: Vec<&str> = SCANNED_KINDS.iter().map(|(plural, _)| *plural).collect();
        let dump = sim.kubectl_ok(&["get", &kinds.join(","), "-A", "-o", "json"]);
        let dump_file = dir.join("dump.json");
        std::fs::write(&dump_file, dump).unwrap();
        let version_file = dir.join("version.json");
        std::fs::write(&version_file, sim.kubectl_ok(&["version", "-o", "json"])).unwrap();
        let (out, offline) = scan_json(&[
            "--from",
            dump_file.to_str().unwrap(),
            "--from",
            version_file.to_str().unwrap(),
            "--fail-on",
            "never",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(offline["inventory"], live["inventory"]);
        assert_eq!(offline["serverVersion"], live["serverVersion"]);
        let incomplete: Vec<String> = objects_with(&offline, "INPUT_INCOMPLETE")
            .into_iter()
            .map(|(_, name)| name)
            .collect();
        assert_eq!(incomplete, ["poddisruptionbudgets", "secrets"]);
        let skipped = ["INPUT_INCOMPLETE", "NO_PDB", "AZURE_FILE_SECRET_MISSING"];
        let without = |report: &serde_json::Value| -> Vec<serde_json::Value> {
            report["findings"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|f| !skipped.iter().any(|c| f["code"] == *c))
                .cloned()
                .collect()
        };
        assert_eq!(without(&offline), without(&live));
        // Adding the two empty typed Lists restores the full, identical report.
        let (out, completed) = scan_json(&[
            "--from",
            dump_file.to_str().unwrap(),
            "--from",
            version_file.to_str().unwrap(),
            "--from",
            per_kind.join("poddisruptionbudgets.json").to_str().unwrap(),
            "--from",
            per_kind.join("secrets.json").to_str().unwrap(),
            "--fail-on",
            "never",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(completed, live);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// What the `every-rule` simulation trips, live: each rule code with one object it
    /// must be reported on. Every code in `RULES` is here except the vCenter rules
    /// (`vsphere::VCENTER_CODES`), which compare the cluster with a vCenter and need
    /// `scan --vcenter` (`mod vsphere` trips them against the vCenter simulator).
    /// `PLUGIN_REMOVAL_UPCOMING` is only reported below 1.31 (RBD and CephFS lose their
    /// translation there) and the simulator serves 1.33, so it is checked on a second
    /// live scan with `--server-version 1.30`. `INPUT_INCOMPLETE` is not a rule: a live
    /// scan allowed to list everything never reports it.
    const EVERY_RULE_LIVE: [(&str, &str, &str); 30] = [
        ("AZURE_FILE_SECRET_MISSING", "PersistentVolume", "af-share"),
        (
            "CSI_CLASS_HAS_MIGRATION_PARAMETERS",
            "StorageClass",
            "vsphere-csi",
        ),
        ("CSI_DRIVER_MISSING", "CSIDriver", "pd.csi.storage.gke.io"),
        ("CSI_DRIVER_NOT_ON_NODE", "CSINode", "win-0"),
        ("DEFAULT_CLASS_IN_TREE", "StorageClass", "gp2"),
        (
            "GCE_HANDLE_UNSPECIFIED_PROJECT",
            "PersistentVolume",
            "gce-nozone",
        ),
        ("IN_TREE_PLUGIN_REMOVED", "CSIDriver", "ebs.csi.aws.com"),
        ("INLINE_IN_TREE_VOLUME", "Deployment", "default/legacy"),
        ("MANAGED_BY_GITOPS", "Deployment", "default/web"),
        ("MIGRATED_PLUGINS_ANNOTATION_MISSING", "CSINode", "node-0"),
        ("NO_PDB", "StatefulSet", "default/db"),
        ("OWNED_BY_OPERATOR", "StatefulSet", "default/db"),
        ("PLUGIN_REMOVAL_UPCOMING", "PersistentVolume", "rbd-old"),
        ("PLUGIN_TRANSLATION_REMOVED", "PersistentVolume", "rbd-old"),
        ("PV_RECLAIM_DELETE", "PersistentVolume", "ebs-web"),
        ("PV_RELEASED_OR_FAILED", "PersistentVolume", "ebs-released"),
        ("SINGLE_REPLICA", "Deployment", "default/web"),
        (
            "STATIC_PV_MISSING_PROVISIONER_ANNOTATION",
            "PersistentVolume",
            "vs-static",
        ),
        (
            "STATIC_PVC_MISSING_PROVISIONER_ANNOTATION",
            "PersistentVolumeClaim",
            "default/vs-claim",
        ),
        ("STS_RETENTION_DELETES_PVCS", "StatefulSet", "default/db"),
        ("STS_TEMPLATE_IN_TREE_CLASS", "StatefulSet", "default/db"),
        ("UNTRANSLATABLE_PV", "PersistentVolume", "azure-blob"),
        ("UNTRANSLATABLE_STORAGE_CLASS", "StorageClass", "pd-bad"),
        ("VSPHERE_INLINE_VOLUME", "Deployment", "default/legacy"),
        (
            "VSPHERE_MULTIPLE_VCENTERS_UNVERIFIED",
            "CSIDriver",
            "csi.vsphere.vmware.com",
        ),
        ("VSPHERE_RAW_BLOCK_VOLUME", "PersistentVolume", "vs-static"),
        (
            "VSPHERE_UNSUPPORTED_SC_PARAMETER",
            "StorageClass",
            "vsan-raw",
        ),
        (
            "VSPHERE_WINDOWS_FILESYSTEM",
            "PersistentVolume",
            "vs-static",
        ),
        // Two more objects of rules above, from other parts of the scenario.
        ("CSI_DRIVER_NOT_ON_NODE", "CSINode", "node-0"),
        ("MIGRATED_PLUGINS_ANNOTATION_MISSING", "CSINode", "node-1"),
    ];

    #[test]
    fn live_scan_of_the_every_rule_simulation_trips_every_rule_and_a_dump_agrees() {
        let sim = Sim::start("scan-every-rule", &["--scenario", "every-rule"]);
        let (out, live) = scan_live(&sim, &[]);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert_eq!(live["serverVersion"]["source"], "apiServer");
        let (out, older) = scan_live(&sim, &["--fail-on", "never", "--server-version", "1.30"]);
        assert!(out.status.success(), "{}", stderr(&out));

        for (code, kind, name) in EVERY_RULE_LIVE {
            let report = if code == "PLUGIN_REMOVAL_UPCOMING" {
                &older
            } else {
                &live
            };
            let found = objects_with(report, code);
            assert!(
                found.contains(&(kind.to_owned(), name.to_owned())),
                "{code} not reported on {kind} {name}; it is on {found:?}"
            );
        }
        let table: BTreeSet<&str> = EVERY_RULE_LIVE.iter().map(|(code, _, _)| *code).collect();
        let every: BTreeSet<&str> = csi_migrate_scan::rules::RULES
            .iter()
            .map(|r| r.code())
            .filter(|code| !vsphere::VCENTER_CODES.contains(code))
            .collect();
        assert_eq!(
            table, every,
            "the table must name every rule that cluster objects can trip"
        );
        assert!(!codes(&live).contains("INPUT_INCOMPLETE"));

        // The same cluster dumped with kubectl (each kind listed on its own, plus
        // `kubectl version`) and scanned offline gives the same report, byte for byte.
        let dir = scratch("every-rule-dump");
        for (plural, path) in SCANNED_KINDS {
            let list = sim.kubectl_ok(&["get", "--raw", path]);
            std::fs::write(dir.join(format!("{plural}.json")), list).unwrap();
        }
        std::fs::write(
            dir.join("version.json"),
            sim.kubectl_ok(&["version", "-o", "json"]),
        )
        .unwrap();
        let (out, offline) = scan_json(&["--from", dir.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert_eq!(offline["findings"], live["findings"]);
        assert_eq!(offline, live);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn live_exit_codes_follow_fail_on() {
        let sim = Sim::start("scan-fail-on", &["--scenario", "mixed"]);
        for (args, code, says) in [
            (
                &[][..],
                1,
                Some("2 finding(s) of severity blocker or worse (--fail-on blocker)"),
            ),
            (&["--fail-on", "blocker"][..], 1, Some("--fail-on blocker")),
            (
                &["--fail-on", "warning"][..],
                1,
                Some("of severity warning or worse (--fail-on warning)"),
            ),
            (&["--fail-on", "never"][..], 0, None),
            // Nothing in this namespace is in-tree: only cluster-wide infos remain.
            (&["-n", "kube-system", "--fail-on", "warning"][..], 0, None),
        ] {
            let (out, report) = scan_live(&sim, args);
            assert_eq!(out.status.code(), Some(code), "{args:?}: {}", stderr(&out));
            match says {
                Some(text) => assert!(stderr(&out).contains(text), "{args:?}: {}", stderr(&out)),
                None => assert!(stderr(&out).is_empty(), "{args:?}: {}", stderr(&out)),
            }
            // The report is printed whatever the exit code.
            assert_eq!(report["schemaVersion"], "csi-migrate.scan/v1");
        }
        // An unreachable cluster is not a clean scan.
        let dir = scratch("unreachable");
        let kubeconfig = dir.join("kubeconfig");
        let text = std::fs::read_to_string(&sim.kubeconfig).unwrap();
        let server = text
            .lines()
            .find(|l| l.trim_start().starts_with("server:"))
            .unwrap();
        std::fs::write(
            &kubeconfig,
            text.replace(server, "    server: http://127.0.0.1:9"),
        )
        .unwrap();
        let out = run(&["scan", "--kubeconfig", kubeconfig.to_str().unwrap()], "");
        assert!(!out.status.success());
        assert_ne!(out.status.code(), Some(0));
        assert!(stderr(&out).contains("cannot list"), "{}", stderr(&out));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn live_namespace_filter_lists_one_namespace() {
        let sim = Sim::start("scan-ns", &["--scenario", "mixed"]);
        // A second namespace with its own inline in-tree volume. (`kubectl create
        // namespace` sends protobuf, which the simulator does not decode: apply JSON.)
        let pod = dir_with_pod();
        sim.kubectl_ok(&[
            "apply",
            "--server-side",
            "-f",
            pod.join("pod.yaml").to_str().unwrap(),
        ]);

        let (_, all) = scan_live(&sim, &["--fail-on", "never"]);
        let (_, default) = scan_live(&sim, &["-n", "default", "--fail-on", "never"]);
        let (_, team) = scan_live(&sim, &["-n", "team", "--fail-on", "never"]);
        assert_eq!(all["summary"]["inTreeInlineVolumes"], 2);
        assert_eq!(default["namespace"], "default");
        assert_eq!(default["summary"]["inTreeInlineVolumes"], 1);
        assert_eq!(
            default["inventory"]["persistentVolumes"],
            all["inventory"]["persistentVolumes"]
        );
        assert_eq!(default["summary"]["workloads"], 10);

        assert_eq!(team["namespace"], "team");
        assert_eq!(team["summary"]["inTreePersistentVolumes"], 0);
        assert_eq!(team["summary"]["inTreePersistentVolumeClaims"], 0);
        let owners: Vec<String> = team["inventory"]["inlineVolumes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| {
                format!(
                    "{}/{}",
                    v["owner"]["namespace"].as_str().unwrap(),
                    v["owner"]["name"].as_str().unwrap()
                )
            })
            .collect();
        assert_eq!(owners, ["team/scratch-ebs"]);
        assert_eq!(names(&team["workloads"], "readiness"), ["manual"]);
        assert_eq!(
            objects_with(&team, "INLINE_IN_TREE_VOLUME"),
            [("Pod".to_owned(), "team/scratch-ebs".to_owned())]
        );
        // Cluster-scoped objects are still read: the drivers are all there.
        assert!(!codes(&team).contains("CSI_DRIVER_MISSING"));
        // The offline filter agrees with the live one.
        let dump = sim.kubectl_ok(&["get", "pods,persistentvolumes,persistentvolumeclaims,storageclasses,csidrivers,csinodes,nodes", "-A", "-o", "json"]);
        let file = pod.join("dump.json");
        std::fs::write(&file, dump).unwrap();
        let (_, offline_team) = scan_json(&[
            "--from",
            file.to_str().unwrap(),
            "-n",
            "team",
            "--fail-on",
            "never",
        ]);
        assert_eq!(
            offline_team["inventory"]["inlineVolumes"],
            team["inventory"]["inlineVolumes"]
        );
        let _ = std::fs::remove_dir_all(&pod);
    }

    /// A directory holding `pod.yaml`: namespace `team` and a pod in it with an inline EBS volume.
    fn dir_with_pod() -> PathBuf {
        let dir = scratch("team-pod");
        let namespace = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}});
        let pod = serde_json::json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "scratch-ebs", "namespace": "team"},
            "spec": {"containers": [{"name": "app", "image": "busybox"}],
                     "volumes": [{"name": "scratch",
                                  "awsElasticBlockStore": {"volumeID": "vol-0123456789abcdef0", "fsType": "ext4"}}]}});
        std::fs::write(dir.join("pod.yaml"), format!("{namespace}\n---\n{pod}\n")).unwrap();
        dir
    }
}

mod migrate {
    use super::*;
    use std::time::{Duration, Instant};

    /// `csi-migrate sim --scenario ebs-statefulset`, killed on drop.
    struct EbsSim {
        child: std::process::Child,
        dir: PathBuf,
        kubeconfig: PathBuf,
    }

    impl EbsSim {
        fn start(name: &str) -> Self {
            let dir = std::env::temp_dir().join(format!(
                "csi-migrate-e2e-migrate-{name}-{}",
                std::process::id()
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let kubeconfig = dir.join("kubeconfig");
            let child = Command::new(BIN)
                .args([
                    "sim",
                    "--scenario",
                    "ebs-statefulset",
                    "--listen",
                    "127.0.0.1:0",
                ])
                .arg("--kubeconfig-out")
                .arg(&kubeconfig)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let deadline = Instant::now() + Duration::from_secs(30);
            while !kubeconfig.exists() {
                assert!(
                    Instant::now() < deadline,
                    "sim did not write its kubeconfig"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
            Self {
                child,
                dir,
                kubeconfig,
            }
        }

        fn run(&self, args: &[&str]) -> Output {
            let mut all: Vec<&str> = args.to_vec();
            all.extend(["--kubeconfig", self.kubeconfig.to_str().unwrap()]);
            run(&all, "")
        }
    }

    impl Drop for EbsSim {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    #[test]
    fn gdc_preflight_and_rolling_migration_invocations_mean_plan_and_migrate() {
        let sim = EbsSim::start("gdc");
        let target = [
            "--sts-name",
            "web",
            "--sts-namespace",
            "default",
            "--csi-storageclass",
            "gp2-csi",
        ];
        let mut preflight = vec!["preflight", "--intree-storageclass", "gp2"];
        preflight.extend(target);
        let out = sim.run(&preflight);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            String::from_utf8_lossy(&out.stdout)
                .contains("statefulset default/web → storageclass gp2-csi")
        );

        let mut wrong = vec!["preflight", "--intree-storageclass", "thin"];
        wrong.extend(target);
        let out = sim.run(&wrong);
        assert_eq!(out.status.code(), Some(1));
        assert!(
            String::from_utf8_lossy(&out.stderr)
                .contains("is not on --intree-storageclass \"thin\"")
        );

        let work_dir = sim.dir.join("gdc-work");
        let mut rolling = vec![
            "rolling-migration",
            "all",
            "--intree-storageclass",
            "gp2",
            "--yes",
            "--working-directory",
        ];
        rolling.push(work_dir.to_str().unwrap());
        rolling.extend(target);
        let out = sim.run(&rolling);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("migration complete"));
        assert!(
            work_dir.join("journal.jsonl").exists()
                || std::fs::read_dir(&work_dir).unwrap().count() > 0
        );
    }

    /// A Deployment `reports` on claim `reports` and an unused claim `scratch`, on gp2.
    const DEPLOYMENT_AND_CLAIM: &str = r#"apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: reports, namespace: default}
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: gp2
  resources: {requests: {storage: 1Gi}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: scratch, namespace: default}
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: gp2
  resources: {requests: {storage: 1Gi}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: reports, namespace: default}
spec:
  replicas: 1
  selector: {matchLabels: {app: reports}}
  template:
    metadata: {labels: {app: reports}}
    spec:
      containers: [{name: app, image: busybox}]
      volumes: [{name: data, persistentVolumeClaim: {claimName: reports}}]
"#;

    #[test]
    fn deployment_and_claim_migrate_through_the_binary() {
        let sim = crate::sim::Sim::start("deploy", &["--scenario", "ebs-statefulset"]);
        let manifest = std::env::temp_dir().join(format!(
            "csi-migrate-e2e-deploy-{}.yaml",
            std::process::id()
        ));
        std::fs::write(&manifest, DEPLOYMENT_AND_CLAIM).unwrap();
        sim.kubectl_ok(&["apply", "-f", manifest.to_str().unwrap()]);
        let _ = std::fs::remove_file(&manifest);
        sim.kubectl_ok(&[
            "wait",
            "deployment/reports",
            "--for=jsonpath={.status.availableReplicas}=1",
            "--timeout=60s",
        ]);
        sim.kubectl_ok(&[
            "wait",
            "pvc/scratch",
            "--for=jsonpath={.status.phase}=Bound",
            "--timeout=60s",
        ]);
        let kubeconfig = sim.kubeconfig.to_str().unwrap().to_owned();
        let csi = |args: &[&str]| {
            let mut all = args.to_vec();
            all.extend(["--kubeconfig", kubeconfig.as_str()]);
            run(&all, "")
        };
        let target = ["--to-storageclass", "gp2-csi"];

        let refused = csi(&[&["plan", "deployment", "reports"][..], &target].concat());
        assert_eq!(refused.status.code(), Some(1));
        assert!(
            stderr(&refused).contains("--allow-downtime"),
            "{}",
            stderr(&refused)
        );
        let plan = csi(&[
            &["plan", "deploy", "reports", "--allow-downtime"][..],
            &target,
        ]
        .concat());
        assert!(plan.status.success(), "{}", stderr(&plan));
        assert!(stdout(&plan).contains("deployment default/reports → storageclass gp2-csi"));
        assert!(stdout(&plan).contains("PATCH deployment default/reports spec.replicas=0"));

        let work = std::env::temp_dir().join(format!(
            "csi-migrate-e2e-deploy-work-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&work);
        let deployment_dir = work.join("reports");
        let migrated = csi(&[
            &[
                "migrate",
                "deployment",
                "reports",
                "--allow-downtime",
                "--yes",
            ][..],
            &target,
            &["--work-dir", deployment_dir.to_str().unwrap()],
        ]
        .concat());
        assert!(migrated.status.success(), "{}", stderr(&migrated));
        let volume =
            sim.kubectl_ok(&["get", "pvc", "reports", "-o", "jsonpath={.spec.volumeName}"]);
        assert!(volume.ends_with("-csi"), "{volume}");
        let driver = sim.kubectl_ok(&["get", "pv", &volume, "-o", "jsonpath={.spec.csi.driver}"]);
        assert_eq!(driver, "ebs.csi.aws.com");
        sim.kubectl_ok(&[
            "wait",
            "deployment/reports",
            "--for=jsonpath={.status.availableReplicas}=1",
            "--timeout=60s",
        ]);

        // --dry-run: every write sent with dryRun=All, nothing changes, no work dir.
        let claim_dir = work.join("scratch");
        let before = sim.kubectl_ok(&["get", "pvc", "scratch", "-o", "jsonpath={.metadata.uid}"]);
        let dry = csi(&[
            &["migrate", "pvc", "scratch", "--dry-run"][..],
            &target,
            &["--work-dir", claim_dir.to_str().unwrap()],
        ]
        .concat());
        assert!(dry.status.success(), "{}", stderr(&dry));
        assert!(
            stderr(&dry).contains("accepted (dry run)"),
            "{}",
            stderr(&dry)
        );
        assert!(!claim_dir.exists(), "a dry run leaves no work dir");
        let after = sim.kubectl_ok(&["get", "pvc", "scratch", "-o", "jsonpath={.metadata.uid}"]);
        assert_eq!(before, after);

        let migrated = csi(&[
            &["migrate", "persistentvolumeclaim", "scratch", "--yes"][..],
            &target,
            &["--work-dir", claim_dir.to_str().unwrap()],
        ]
        .concat());
        assert!(migrated.status.success(), "{}", stderr(&migrated));
        let class = sim.kubectl_ok(&[
            "get",
            "pvc",
            "scratch",
            "-o",
            "jsonpath={.spec.storageClassName}",
        ]);
        assert_eq!(class, "gp2-csi");
        let rolled_back = csi(&["rollback", "--work-dir", claim_dir.to_str().unwrap()]);
        assert!(rolled_back.status.success(), "{}", stderr(&rolled_back));
        let class = sim.kubectl_ok(&[
            "get",
            "pvc",
            "scratch",
            "-o",
            "jsonpath={.spec.storageClassName}",
        ]);
        assert_eq!(class, "gp2");
        let _ = std::fs::remove_dir_all(&work);
    }

    /// Deployments `a` and `b` (label tier=batch), each on its own gp2 claim.
    fn labelled_deployments() -> String {
        let mut docs = Vec::new();
        for name in ["a", "b"] {
            docs.push(format!(
                r#"apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: data-{name}, namespace: default}}
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: gp2
  resources: {{requests: {{storage: 1Gi}}}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: default, labels: {{tier: batch}}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers: [{{name: app, image: busybox}}]
      volumes: [{{name: data, persistentVolumeClaim: {{claimName: data-{name}}}}}]
"#
            ));
        }
        docs.join("---\n")
    }

    #[test]
    fn deployments_selected_by_label_migrate_concurrently_and_roll_back_together() {
        let sim = crate::sim::Sim::start("label", &["--scenario", "ebs-statefulset"]);
        let manifest =
            std::env::temp_dir().join(format!("csi-migrate-e2e-label-{}.yaml", std::process::id()));
        std::fs::write(&manifest, labelled_deployments()).unwrap();
        sim.kubectl_ok(&["apply", "-f", manifest.to_str().unwrap()]);
        let _ = std::fs::remove_file(&manifest);
        for name in ["a", "b"] {
            sim.kubectl_ok(&[
                "wait",
                &format!("deployment/{name}"),
                "--for=jsonpath={.status.availableReplicas}=1",
                "--timeout=60s",
            ]);
        }
        let kubeconfig = sim.kubeconfig.to_str().unwrap().to_owned();
        let csi = |args: &[&str]| {
            let mut all = args.to_vec();
            all.extend(["--kubeconfig", kubeconfig.as_str()]);
            run(&all, "")
        };
        let work =
            std::env::temp_dir().join(format!("csi-migrate-e2e-label-work-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&work);
        let work_dir = work.to_str().unwrap();

        // plan: one JSON array, one plan per selected Deployment
        let plans = csi(&[
            "plan",
            "deployment",
            "-l",
            "tier=batch",
            "--to-storageclass",
            "gp2-csi",
            "--allow-downtime",
            "-o",
            "json",
        ]);
        assert!(plans.status.success(), "{}", stderr(&plans));
        let plans: serde_json::Value = serde_json::from_slice(&plans.stdout).unwrap();
        let names: Vec<&str> = plans
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["a", "b"]);

        let migrated = csi(&[
            "migrate",
            "deployment",
            "-l",
            "tier=batch",
            "--to-storageclass",
            "gp2-csi",
            "--allow-downtime",
            "--yes",
            "--concurrency",
            "2",
            "--work-dir",
            work_dir,
        ]);
        assert!(migrated.status.success(), "{}", stderr(&migrated));
        // Progress lines of runs going on at once say whose they are.
        assert!(
            stderr(&migrated).contains("[deployment default/a] "),
            "{}",
            stderr(&migrated)
        );
        assert!(stderr(&migrated).contains("[deployment default/b] "));
        for name in ["a", "b"] {
            assert!(work.join(format!("deployment-{name}/plan.json")).exists());
            let class = sim.kubectl_ok(&[
                "get",
                "pvc",
                &format!("data-{name}"),
                "-o",
                "jsonpath={.spec.storageClassName}",
            ]);
            assert_eq!(class, "gp2-csi");
        }
        // Resume finds both (complete) runs under the root; rollback reverses both.
        let resumed = csi(&["resume", "--work-dir", work_dir, "--concurrency", "2"]);
        assert!(resumed.status.success(), "{}", stderr(&resumed));
        let rolled_back = csi(&["rollback", "--work-dir", work_dir, "--concurrency", "2"]);
        assert!(rolled_back.status.success(), "{}", stderr(&rolled_back));
        for name in ["a", "b"] {
            let class = sim.kubectl_ok(&[
                "get",
                "pvc",
                &format!("data-{name}"),
                "-o",
                "jsonpath={.spec.storageClassName}",
            ]);
            assert_eq!(class, "gp2");
        }
        let _ = std::fs::remove_dir_all(&work);
    }

    #[test]
    fn plan_migrate_and_resume_through_the_binary() {
        let sim = EbsSim::start("full");
        let plan = sim.run(&[
            "plan",
            "statefulset",
            "web",
            "-n",
            "default",
            "--to-storageclass",
            "gp2-csi",
            "-o",
            "json",
        ]);
        assert!(
            plan.status.success(),
            "{}",
            String::from_utf8_lossy(&plan.stderr)
        );
        let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
        assert_eq!(plan["apiVersion"], "csi-migrate.plan/v1");
        assert_eq!(plan["driver"], "ebs.csi.aws.com");
        let steps = plan["steps"].as_array().unwrap().len();

        let blocked = sim.run(&["plan", "statefulset", "web", "--to-storageclass", "gp2"]);
        assert_eq!(blocked.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&blocked.stderr).contains("storageclass/gp2 provisioner"));

        let work_dir = sim.dir.join("work");
        let work = work_dir.to_str().unwrap();
        // No TTY and no --yes: refused before anything happens.
        let refused = sim.run(&[
            "migrate",
            "statefulset",
            "web",
            "--to-storageclass",
            "gp2-csi",
            "--work-dir",
            work,
        ]);
        assert_eq!(refused.status.code(), Some(2));
        assert!(!work_dir.exists());

        let done = sim.run(&[
            "migrate",
            "statefulset",
            "web",
            "--to-storageclass",
            "gp2-csi",
            "--work-dir",
            work,
            "--yes",
            "--timeout",
            "60",
        ]);
        assert!(
            done.status.success(),
            "{}",
            String::from_utf8_lossy(&done.stderr)
        );
        assert!(
            String::from_utf8_lossy(&done.stdout).contains(&format!("{steps} of {steps} steps"))
        );
        assert!(work_dir.join("journal.jsonl").exists());

        // Resume of a finished run: nothing left to do.
        let resumed = sim.run(&["resume", "--work-dir", work]);
        assert!(
            resumed.status.success(),
            "{}",
            String::from_utf8_lossy(&resumed.stderr)
        );
        assert!(String::from_utf8_lossy(&resumed.stdout).contains(&format!("0 of {steps} steps")));

        // The claims now sit on CSI PVs; planning again finds nothing in-tree.
        let again = sim.run(&["plan", "statefulset", "web", "--to-storageclass", "gp2-csi"]);
        assert_eq!(again.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&again.stderr).contains("already a CSI volume"));

        // Rollback restores the in-tree objects: the plan works again.
        let back = sim.run(&["rollback", "--work-dir", work, "--timeout", "60"]);
        assert!(
            back.status.success(),
            "{}",
            String::from_utf8_lossy(&back.stderr)
        );
        assert!(String::from_utf8_lossy(&back.stdout).contains("rollback complete"));
        let replan = sim.run(&["plan", "statefulset", "web", "--to-storageclass", "gp2-csi"]);
        assert!(
            replan.status.success(),
            "{}",
            String::from_utf8_lossy(&replan.stderr)
        );
    }

    /// kubectl against the simulator, parsed from `-o json`.
    fn kubectl_json(sim: &EbsSim, args: &[&str]) -> serde_json::Value {
        let out = Command::new("kubectl")
            .args(args)
            .args(["-o", "json", "--cache-dir"])
            .arg(sim.dir.join("kubectl-cache"))
            .env("KUBECONFIG", &sim.kubeconfig)
            .output()
            .expect("kubectl must be installed to run these tests (.ci/run installs it)");
        assert!(out.status.success(), "kubectl {args:?}: {}", stderr(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    #[test]
    fn json_output_is_one_event_per_step_start_and_done_then_a_summary_and_kubernetes_events() {
        let sim = EbsSim::start("events");
        let work_dir = sim.dir.join("work");
        let out = sim.run(&[
            "migrate",
            "statefulset",
            "web",
            "--to-storageclass",
            "gp2-csi",
            "--work-dir",
            work_dir.to_str().unwrap(),
            "--yes",
            "--timeout",
            "60",
            "-o",
            "json",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(stderr(&out), "", "with -o json only errors go to stderr");
        let events: Vec<serde_json::Value> = stdout(&out)
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert!(
            events
                .iter()
                .all(|e| e["apiVersion"] == "csi-migrate.events/v1")
        );
        let workload =
            serde_json::json!({"kind": "StatefulSet", "namespace": "default", "name": "web"});
        assert!(events.iter().all(|e| e["workload"] == workload));

        let (plan, rest) = events.split_first().unwrap();
        assert_eq!(plan["type"], "plan");
        let steps = plan["plan"]["steps"].as_array().unwrap();
        let (summary, step_events) = rest.split_last().unwrap();
        assert_eq!(step_events.len(), 2 * steps.len());
        for (i, step) in steps.iter().enumerate() {
            let (started, done) = (&step_events[2 * i], &step_events[2 * i + 1]);
            for (event, kind) in [(started, "started"), (done, "done")] {
                assert_eq!(event["type"], "step");
                assert_eq!(event["operation"], "migrate");
                assert_eq!(event["event"], kind, "step {i}");
                assert_eq!(event["index"], i);
                assert_eq!(event["total"], steps.len());
                assert_eq!(&event["step"], step);
            }
            assert!(done["stepSeconds"].as_f64().unwrap() >= 0.0);
            assert!(done["elapsedSeconds"].as_f64() >= started["elapsedSeconds"].as_f64());
        }
        // Replica steps carry their replica's pod.
        let delete_pod = step_events
            .iter()
            .find(|e| e["step"]["action"] == "deletePod")
            .unwrap();
        assert_eq!(
            delete_pod["pods"],
            serde_json::json!([delete_pod["step"]["pod"]])
        );
        assert_eq!(summary["type"], "summary");
        assert_eq!(summary["outcome"], "succeeded");
        assert_eq!(summary["executed"], steps.len());
        assert_eq!(summary["total"], steps.len());

        // Kubernetes Events on the StatefulSet: started on the old set, completed on the
        // recreated one (kubectl describe matches by uid).
        let uid = kubectl_json(&sim, &["get", "statefulset", "web"])["metadata"]["uid"].clone();
        let list = kubectl_json(&sim, &["get", "events", "-n", "default"]);
        let ours: Vec<&serde_json::Value> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["source"]["component"] == "csi-migrate")
            .collect();
        let reasons: Vec<&str> = ours.iter().map(|e| e["reason"].as_str().unwrap()).collect();
        assert!(reasons.contains(&"MigrationStarted"), "{reasons:?}");
        assert!(reasons.contains(&"MigrationCompleted"), "{reasons:?}");
        for event in &ours {
            assert_eq!(event["involvedObject"]["kind"], "StatefulSet");
            assert_eq!(event["involvedObject"]["name"], "web");
        }
        let completed = ours
            .iter()
            .find(|e| e["reason"] == "MigrationCompleted")
            .unwrap();
        assert_eq!(completed["involvedObject"]["uid"], uid);
        assert_eq!(completed["type"], "Normal");

        // Resume of the finished run: no steps, just the summary; no new Event.
        let resumed = sim.run(&[
            "resume",
            "--work-dir",
            work_dir.to_str().unwrap(),
            "-o",
            "json",
        ]);
        assert!(resumed.status.success(), "{}", stderr(&resumed));
        let lines: Vec<serde_json::Value> = stdout(&resumed)
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0]["type"], "summary");
        assert_eq!(lines[0]["operation"], "resume");
        assert_eq!(lines[0]["executed"], 0);
    }

    /// Elapsed times and uids (also inside generated PV names) vary from run to run.
    fn redact_progress(text: &str) -> String {
        let uid =
            regex::Regex::new(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
                .unwrap();
        let elapsed = regex::Regex::new(r"^\[ *[0-9]+\.[0-9]s\]").unwrap();
        let took = regex::Regex::new(r" \([0-9]+\.[0-9]s\)$").unwrap();
        text.lines()
            .map(|line| {
                let line = uid.replace_all(line, "UID");
                let line = elapsed.replace(&line, "[ELAPSED]");
                took.replace(&line, " (TOOK)").into_owned()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn text_output_off_a_terminal_is_plain_progress_lines() {
        let sim = EbsSim::start("plain");
        let work_dir = sim.dir.join("work");
        let out = sim.run(&[
            "migrate",
            "statefulset",
            "web",
            "--to-storageclass",
            "gp2-csi",
            "--work-dir",
            work_dir.to_str().unwrap(),
            "--yes",
            "--timeout",
            "60",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(
            !err.contains('\u{1b}') && !err.contains('\r'),
            "no escape codes or carriage returns when stderr is not a terminal"
        );
        // The plan table first, then one line per step start and done.
        let progress: String = err
            .lines()
            .skip_while(|line| !line.starts_with('['))
            .map(|line| format!("{line}\n"))
            .collect();
        insta::assert_snapshot!("migrate_text_progress", redact_progress(&progress));
        assert_eq!(
            stdout(&out),
            format!(
                "migration complete: 33 of 33 steps run now; backups and journal in {}\n",
                work_dir.display()
            )
        );
    }
}

/// `csi-migrate webhook` as an operator runs it.
mod webhook {
    use super::*;
    use std::time::{Duration, Instant};

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    #[test]
    fn serves_admission_reviews_over_https_and_denies_migration_parameters_on_a_csi_class() {
        let dir = Webhook::dir("https");
        let port = free_port();
        let webhook = Webhook::start(
            dir.clone(),
            port,
            &Webhook::serve_args(&dir, port, &[]),
            &[],
        );
        let review = serde_json::json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "7f0b", "operation": "CREATE",
                "kind": {"group": "storage.k8s.io", "version": "v1", "kind": "StorageClass"},
                "resource": {"group": "storage.k8s.io", "version": "v1", "resource": "storageclasses"},
                "userInfo": {"username": "admin"}, "name": "fast",
                "object": {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "fast"},
                           "provisioner": "csi.vsphere.vmware.com",
                           "parameters": {"csimigration": "true", "datastore-migrationparam": "ds1"}}}
        });
        let (code, body) = webhook.curl("/validate", Some(&review.to_string()));
        assert_eq!(code, 200, "{body}");
        let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(answer["response"]["uid"], "7f0b");
        assert_eq!(answer["response"]["allowed"], false);
        let message = answer["response"]["status"]["message"]
            .as_str()
            .unwrap_or_default();
        assert!(
            message.contains("csimigration") && message.contains("datastore-migrationparam"),
            "{message}"
        );
    }

    /// A `csi-migrate webhook` process with its own certificates, stderr captured in a file.
    struct Webhook {
        child: std::process::Child,
        dir: PathBuf,
        port: u16,
    }

    impl Webhook {
        /// Writes a CA, a leaf for localhost and its key into a fresh directory.
        fn dir(name: &str) -> PathBuf {
            let dir = std::env::temp_dir()
                .join(format!("csi-migrate-webhook-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(dir.join("tls")).unwrap();
            let certs = kube_sim::tls::ServingCertificates::generate().unwrap();
            std::fs::write(dir.join("tls/tls.crt"), certs.chain_pem()).unwrap();
            std::fs::write(dir.join("tls/tls.key"), &certs.key_pem).unwrap();
            std::fs::write(dir.join("ca.crt"), &certs.ca_pem).unwrap();
            dir
        }

        /// `webhook` with the certificates of `dir`, listening on `port`, then `extra`.
        fn serve_args(dir: &Path, port: u16, extra: &[&str]) -> Vec<String> {
            let path = |file: &str| dir.join(file).to_string_lossy().into_owned();
            let mut args = vec![
                "webhook".to_owned(),
                "--tls-cert".to_owned(),
                path("tls/tls.crt"),
                "--tls-key".to_owned(),
                path("tls/tls.key"),
                "--listen".to_owned(),
                format!("127.0.0.1:{port}"),
            ];
            args.extend(extra.iter().map(|a| (*a).to_owned()));
            args
        }

        /// Starts the binary with exactly `args` (and `env`) and waits until it listens on `port`.
        fn start(dir: PathBuf, port: u16, args: &[String], env: &[(&str, &Path)]) -> Self {
            let stderr = std::fs::File::create(dir.join("stderr")).unwrap();
            let mut command = Command::new(BIN);
            command
                .args(args)
                .env_remove("KUBERNETES_SERVICE_HOST")
                .env("RUST_LOG", "debug")
                .stdout(Stdio::null())
                .stderr(stderr);
            for (key, value) in env {
                command.env(key, value);
            }
            let child = command.spawn().unwrap();
            let mut webhook = Self { child, dir, port };
            let deadline = Instant::now() + Duration::from_secs(20);
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                if let Ok(Some(status)) = webhook.child.try_wait() {
                    panic!("the webhook exited with {status}: {}", webhook.stderr());
                }
                assert!(
                    Instant::now() < deadline,
                    "the webhook did not start listening: {}",
                    webhook.stderr()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
            webhook
        }

        fn stderr(&self) -> String {
            std::fs::read_to_string(self.dir.join("stderr")).unwrap_or_default()
        }

        /// `curl` over HTTPS trusting the test CA: (HTTP status, body).
        fn curl(&self, path: &str, body: Option<&str>) -> (u16, String) {
            let mut command = Command::new("curl");
            command.args(["-sS", "-w", "\n%{http_code}", "--cacert"]);
            command.arg(self.dir.join("ca.crt"));
            if let Some(body) = body {
                command.args([
                    "-H",
                    "Content-Type: application/json",
                    "--data-binary",
                    body,
                ]);
            }
            command.arg(format!("https://localhost:{}{path}", self.port));
            let out = command.output().expect("curl is needed for this test");
            assert!(out.status.success(), "curl: {}", stderr(&out));
            let text = stdout(&out);
            let (body, code) = text.rsplit_once('\n').unwrap();
            (code.trim().parse().unwrap(), body.to_owned())
        }

        fn wait_ready(&self) {
            let deadline = Instant::now() + Duration::from_secs(30);
            while self.curl("/readyz", None).0 != 200 {
                assert!(
                    Instant::now() < deadline,
                    "not ready in time: {}",
                    self.stderr()
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }

        /// Sends SIGTERM (to this child only).
        fn terminate(&self) {
            let status = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status()
                .unwrap();
            assert!(status.success());
        }

        /// Waits for the process to exit (at most 30 s) and returns its exit code.
        fn wait_exit(&mut self) -> Option<i32> {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if let Some(status) = self.child.try_wait().unwrap() {
                    return status.code();
                }
                assert!(Instant::now() < deadline, "the webhook did not exit");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    impl Drop for Webhook {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn review(uid: &str, kind: (&str, &str), object: serde_json::Value) -> String {
        serde_json::json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": uid, "operation": "CREATE", "namespace": "shop",
                "kind": {"group": kind.0, "version": "v1", "kind": kind.1},
                "userInfo": {"username": "admin"}, "object": object}
        })
        .to_string()
    }

    const SECRET: &str = "TOPSECRETVALUE";

    #[test]
    fn json_logs_are_json_lines_with_the_uid_and_no_secrets() {
        let dir = Webhook::dir("json-logs");
        let port = free_port();
        let args = Webhook::serve_args(
            &dir,
            port,
            &[
                "--storage-classes",
                "policy",
                "--shutdown-delay",
                "100ms",
                "--log-format",
                "json",
            ],
        );
        let mut webhook = Webhook::start(dir, port, &args, &[]);
        webhook.wait_ready();
        // A pod with an inline in-tree volume (warned, logged) and a secret in its env.
        let pod = serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"containers": [{"name": "c", "image": "busybox", "env": [{"name": "PASSWORD", "value": SECRET}]}],
                     "volumes": [{"name": "d", "awsElasticBlockStore": {"volumeID": "vol-1"}}]}});
        let (code, body) = webhook.curl("/validate", Some(&review("uid-good-1", ("", "Pod"), pod)));
        assert_eq!(code, 200, "{body}");
        assert!(body.contains("warnings"), "{body}");
        // A malformed object that quotes the secret in serde's error.
        let bad = serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
            "spec": {"containers": [{"name": "c", "ports": [{"containerPort": SECRET}]}]}});
        let (code, body) = webhook.curl(
            "/validate",
            Some(&review("uid-malformed-1", ("", "Pod"), bad)),
        );
        assert_eq!(code, 400, "{body}");
        assert!(!body.contains(SECRET), "{body}");
        assert!(
            body.contains("object.spec.containers[0].ports[0].containerPort"),
            "{body}"
        );
        // A body that is not JSON at all, with the secret in it.
        let (code, body) = webhook.curl("/validate", Some(&format!("{{\"password\": {SECRET}}}")));
        assert_eq!(code, 400, "{body}");
        assert!(!body.contains(SECRET), "{body}");

        webhook.terminate();
        assert_eq!(webhook.wait_exit(), Some(0), "{}", webhook.stderr());
        let logs = webhook.stderr();
        assert!(!logs.contains(SECRET), "{logs}");
        assert!(!logs.contains('\u{1b}'), "no colour codes: {logs}");
        let lines: Vec<serde_json::Value> = logs
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect();
        assert!(
            lines
                .iter()
                .all(|l| l.is_object() && l["level"].is_string() && l["message"].is_string()),
            "{logs}"
        );
        let find = |message: &str, uid: &str| {
            lines
                .iter()
                .any(|l| l["message"] == message && l["uid"] == uid)
        };
        assert!(find("reviewed", "uid-good-1"), "{logs}");
        assert!(
            find("rejected a malformed admission request", "uid-malformed-1"),
            "{logs}"
        );
        let rejected = lines
            .iter()
            .find(|l| l["uid"] == "uid-malformed-1")
            .unwrap();
        assert_eq!(rejected["kind"], "Pod", "{rejected}");
        assert!(
            rejected["error"]
                .as_str()
                .unwrap()
                .contains("invalid type, expected i32"),
            "{rejected}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l["message"] == "rejected a malformed admission request"
                    && l.get("uid").is_none()),
            "the unparseable body is logged without a uid: {logs}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l["message"] == "webhook shutting down"),
            "{logs}"
        );
    }

    #[test]
    fn text_logs_have_no_colour_codes_off_a_terminal() {
        let dir = Webhook::dir("text-logs");
        let port = free_port();
        let args = Webhook::serve_args(&dir, port, &["--shutdown-delay=0"]);
        let mut webhook = Webhook::start(dir, port, &args, &[]);
        webhook.wait_ready();
        webhook.terminate();
        assert_eq!(webhook.wait_exit(), Some(0));
        let logs = webhook.stderr();
        assert!(logs.contains("webhook serving"), "{logs}");
        assert!(
            logs.contains("no cluster access: claims are judged by the policy's inTreeStorageClasses names only"),
            "{logs}"
        );
        assert!(!logs.contains('\u{1b}'), "{logs:?}");
    }

    /// The Deployment's container args, as written in deploy/webhook/30-deployment.yaml, are
    /// accepted by the real binary: it starts, watches StorageClasses (here kube-sim's, through
    /// $KUBECONFIG in place of the pod's in-cluster config), turns ready, judges a claim by its
    /// class, and on SIGTERM turns unready and exits cleanly after the shutdown delay.
    #[test]
    fn deployment_args_start_the_webhook() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/webhook");
        let docs = |file: &str| -> Vec<serde_json::Value> {
            serde_saphyr::from_multiple(&std::fs::read_to_string(root.join(file)).unwrap()).unwrap()
        };
        let deployment = &docs("30-deployment.yaml")[0];
        let policy = docs("20-policy-configmap.yaml")[0]["data"]["policy.yaml"]
            .as_str()
            .unwrap()
            .to_owned();
        let container = &deployment["spec"]["template"]["spec"]["containers"][0];
        assert!(
            container["command"].is_null(),
            "the image's ENTRYPOINT is the binary"
        );
        let args: Vec<&str> = container["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();

        let sim = super::sim::Sim::start("webhook-deploy", &[]);
        let dir = Webhook::dir("deploy");
        let sc_file = dir.join("sc.yaml");
        std::fs::write(
            &sc_file,
            "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata:\n  name: old-disks\nprovisioner: kubernetes.io/gce-pd\n",
        )
        .unwrap();
        sim.kubectl_ok(&["apply", "-f", sc_file.to_str().unwrap()]);

        // The mounted volumes, under a temporary root: the Secret's files and the ConfigMap's.
        std::fs::create_dir_all(dir.join("policy")).unwrap();
        std::fs::write(dir.join("policy/policy.yaml"), policy).unwrap();
        let port = free_port();
        let metrics_port = free_port();
        let mut delay = None;
        let args: Vec<String> = args
            .iter()
            .map(|arg| {
                let arg = arg.replace("/etc/csi-migrate/", &format!("{}/", dir.display()));
                if arg.starts_with("--listen=") {
                    format!("--listen=127.0.0.1:{port}")
                } else if arg.starts_with("--metrics-listen=") {
                    format!("--metrics-listen=127.0.0.1:{metrics_port}")
                } else {
                    if let Some(value) = arg.strip_prefix("--shutdown-delay=") {
                        delay = Some(value.to_owned());
                    }
                    arg
                }
            })
            .collect();
        assert_eq!(delay.as_deref(), Some("5s"), "{args:?}");
        assert!(
            args.contains(&"--storage-classes=cluster".to_owned()),
            "{args:?}"
        );
        let mut webhook = Webhook::start(dir, port, &args, &[("KUBECONFIG", &sim.kubeconfig)]);
        assert_eq!(webhook.curl("/healthz", None).0, 200);
        webhook.wait_ready();
        let claim = serde_json::json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data", "namespace": "shop"},
            "spec": {"storageClassName": "old-disks", "accessModes": ["ReadWriteOnce"],
                     "resources": {"requests": {"storage": "1Gi"}}}});
        let (code, body) = webhook.curl(
            "/validate",
            Some(&review("uid-claim", ("", "PersistentVolumeClaim"), claim)),
        );
        assert_eq!(code, 200, "{body}");
        let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(answer["response"]["allowed"], true, "{answer}");
        let warning = answer["response"]["warnings"][0]
            .as_str()
            .unwrap_or_default();
        assert!(
            warning.contains("uses StorageClass \"old-disks\" (in-tree: kubernetes.io/gce-pd)"),
            "{answer}"
        );
        // The metrics port answers too.
        let metrics = Command::new("curl")
            .args(["-sS", &format!("http://127.0.0.1:{metrics_port}/metrics")])
            .output()
            .unwrap();
        assert!(stdout(&metrics).contains("csi_migrate_webhook_reviews_total"));

        // SIGTERM: unready at once, still serving for the 5 s delay, then a clean exit.
        let signalled = Instant::now();
        webhook.terminate();
        let deadline = Instant::now() + Duration::from_secs(3);
        while webhook.curl("/readyz", None).0 != 503 {
            assert!(Instant::now() < deadline, "readyz stayed 200 after SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(webhook.curl("/healthz", None).0, 200);
        assert!(
            signalled.elapsed() < Duration::from_secs(4),
            "too slow to tell"
        );
        assert_eq!(webhook.wait_exit(), Some(0), "{}", webhook.stderr());
        assert!(signalled.elapsed() >= Duration::from_secs(5));
        // JSON logs, as the Deployment asks.
        let logs = webhook.stderr();
        for line in logs.lines().filter(|l| !l.trim().is_empty()) {
            let _: serde_json::Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        }
        assert!(logs.contains("StorageClass cache synced"), "{logs}");
    }

    #[test]
    fn a_missing_certificate_is_bad_input() {
        let out = run(
            &[
                "webhook",
                "--tls-cert",
                "/nonexistent/tls.crt",
                "--tls-key",
                "/nonexistent/tls.key",
                "--listen",
                "127.0.0.1:0",
            ],
            "",
        );
        assert_eq!(out.status.code(), Some(2));
        assert!(
            stderr(&out).contains("/nonexistent/tls.crt"),
            "{}",
            stderr(&out)
        );
    }
}

/// `csi-migrate demo`, the README's run command.
mod demo {
    use super::*;

    #[test]
    fn demo_migrates_ebs_and_vsphere_statefulsets_in_place_and_keeps_every_byte() {
        let out = run(&["demo"], "");
        assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
        let text = stdout(&out);
        assert!(text.contains("== 1.2  csi-migrate scan"), "{text}");
        for driver in ["ebs.csi.aws.com", "csi.vsphere.vmware.com"] {
            let done = format!("3 disks, 3 unchanged checksums, every claim now on {driver}.");
            assert!(text.contains(&done), "{text}");
        }
        assert!(stderr(&out).contains("CREATE statefulset default/web on the target class"));
    }
}

#[path = "../../vsphere/tests/support/vcsim_process.rs"]
mod vcsim_process;

/// vSphere through VMware's vCenter simulator (vcsim, built by `scripts/build-vcsim`; a
/// build or start failure fails the test): kube-sim's vSphere disks live in vcsim's
/// datastore files, no `CnsVSphereVolumeMigration` records exist, and `migrate` registers
/// every VMDK through vCenter as a user would run it.
mod vsphere {
    use super::sim::Sim;
    use super::*;
    use std::collections::BTreeMap;

    const USER: &str = "administrator@vsphere.local";
    const PASSWORD: &str = "e2e-Vc-Pa55w0rd!";
    /// The scan codes only `scan --vcenter` can find.
    pub(crate) const VCENTER_CODES: [&str; 4] = [
        "VSPHERE_DATASTORE_MISSING",
        "VSPHERE_VMDK_MISSING",
        "VSPHERE_STORAGE_POLICY_MISSING",
        "VSPHERE_VCENTER_VERSION",
    ];
    const DATASTORE: &str = "vsanDatastore";

    /// Runs the binary against the simulator with the password only in the environment.
    fn run_with_password(sim: &Sim, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args)
            .arg("--kubeconfig")
            .arg(&sim.kubeconfig)
            .env("VSPHERE_PASSWORD", PASSWORD)
            .env_remove("VSPHERE_USER")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// sha256 of a file, by `sha256sum`.
    fn sha256_of(path: &Path) -> String {
        let out = Command::new("sha256sum").arg(path).output().unwrap();
        assert!(out.status.success(), "sha256sum {}", path.display());
        stdout(&out).split_whitespace().next().unwrap().to_owned()
    }

    /// `plan statefulset web` to the vSphere CSI class, with `extra` flags.
    fn plan_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec![
            "plan",
            "statefulset",
            "web",
            "-n",
            "default",
            "--to-storageclass",
            "vsphere-thin-csi",
        ];
        args.extend_from_slice(extra);
        args
    }

    /// `volumePath` → sha256 of every vSphere disk, from the sim's `/_sim/v1/disks`.
    fn disk_checksums(sim: &Sim) -> BTreeMap<String, String> {
        let disks: serde_json::Value =
            serde_json::from_str(&sim.kubectl_ok(&["get", "--raw", "/_sim/v1/disks"])).unwrap();
        disks["disks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["driver"] == "csi.vsphere.vmware.com")
            .map(|d| {
                (
                    d["inTreeSource"]["vsphereVolume"]["volumePath"]
                        .as_str()
                        .unwrap()
                        .to_owned(),
                    d["sha256"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    /// The `-flat.vmdk` file holding a volume path's bytes in vcsim's datastore.
    fn flat_file(datastore_dir: &Path, volume_path: &str) -> PathBuf {
        let relative = volume_path.split_once("] ").unwrap().1;
        datastore_dir.join(relative.replace(".vmdk", "-flat.vmdk"))
    }

    /// Backing file path (`[ds] folder/x.vmdk`) → FCD id, as vcsim reports them.
    fn fcd_ids(url: &str) -> BTreeMap<String, String> {
        use csi_migrate_vsphere::{ClientOptions, Credentials, VcenterClient};
        let _ = rustls::crypto::ring::default_provider().install_default();
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                let mut vc = VcenterClient::new(url, ClientOptions::default()).unwrap();
                vc.login(&Credentials::new(USER, PASSWORD)).await.unwrap();
                let dc = vc.find_datacenter("DC0").await.unwrap();
                let ds = vc.find_datastore(&dc, DATASTORE).await.unwrap();
                let mut ids = BTreeMap::new();
                for id in vc.list_vstorage_objects(&ds).await.unwrap() {
                    let object = vc.retrieve_vstorage_object(&ds, &id).await.unwrap();
                    ids.insert(object.file_path, object.id);
                }
                vc.logout().await.unwrap();
                ids
            })
    }

    /// Every file under `dir`, recursively.
    fn files_under(dir: &Path) -> Vec<PathBuf> {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files.extend(files_under(&path));
            } else {
                files.push(path);
            }
        }
        files
    }

    #[test]
    fn demo_adds_a_vsphere_run_registering_through_vcsim_and_keeps_the_record_based_one() {
        let binary = super::vcsim_process::build_vcsim();
        let out = run(&["demo", "--vcsim", binary.to_str().unwrap()], "");
        let text = stdout(&out);
        assert!(out.status.success(), "{text}{}", stderr(&out));
        let done = "3 disks, 3 unchanged checksums, every claim now on csi.vsphere.vmware.com.";
        assert_eq!(
            text.matches(done).count(),
            2,
            "record-based and vcsim runs: {text}"
        );
        assert!(
            text.contains("== 3.1  A simulated cluster: vSphere through vCenter"),
            "{text}"
        );
        assert!(
            text.contains("registered with CNS through http://127.0.0.1:"),
            "{text}"
        );

        let skipped = run(&["demo", "--no-vcsim"], "");
        assert!(skipped.status.success(), "{}", stderr(&skipped));
        let text = stdout(&skipped);
        assert_eq!(text.matches(done).count(), 1, "{text}");
        assert!(text.contains("scripts/build-vcsim"), "{text}");
    }

    #[test]
    fn statefulset_on_vcsim_backed_disks_is_registered_and_migrated_onto_fcd_ids() {
        let vcsim = super::vcsim_process::start_vcsim(
            USER,
            PASSWORD,
            // 7.0.0: the RegisterDisk + backingDiskId path, the one vcsim implements
            &["-datastore", DATASTORE, "-api-version", "7.0.0.0"],
        );
        let datastore_dir = vcsim.datastore_dirs[DATASTORE].clone();
        let backing = format!("{DATASTORE}={}", datastore_dir.display());
        let sim = Sim::start(
            "vsphere-vcsim",
            &[
                "--scenario",
                "vsphere-statefulset",
                "--vsphere-datastore",
                &backing,
            ],
        );
        // The scenario's data is in vcsim's files.
        let before = disk_checksums(&sim);
        assert_eq!(before.len(), 3, "{before:?}");
        for (path, sha) in &before {
            assert_eq!(&sha256_of(&flat_file(&datastore_dir, path)), sha, "{path}");
        }
        // The CSI driver never registered anything: registration must go through vCenter.
        sim.kubectl_ok(&["delete", "cnsvspherevolumemigrations", "--all"]);

        // scan --vcenter: the datastores, VMDKs, policy and version check out; a class
        // naming an unknown policy and a wrong datacenter are reported with stable codes.
        let scan = |url: &str, datacenter: &str| -> serde_json::Value {
            let out = run_with_password(
                &sim,
                &[
                    "scan",
                    "-A",
                    "-o",
                    "json",
                    "--fail-on",
                    "never",
                    "--vcenter",
                    url,
                    "--vcenter-user",
                    USER,
                    "--vcenter-datacenters",
                    datacenter,
                ],
            );
            assert!(out.status.success(), "{}", stderr(&out));
            assert!(!stdout(&out).contains(PASSWORD) && !stderr(&out).contains(PASSWORD));
            serde_json::from_slice(&out.stdout).unwrap()
        };
        let with_code = |report: &serde_json::Value, code: &str| -> Vec<String> {
            report["findings"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|f| f["code"] == code)
                .map(|f| {
                    format!(
                        "{}/{}",
                        f["object"]["kind"].as_str().unwrap(),
                        f["object"]["name"].as_str().unwrap()
                    )
                })
                .collect()
        };
        let healthy = scan(&vcsim.url, "DC0");
        for code in VCENTER_CODES {
            assert!(with_code(&healthy, code).is_empty(), "{code}: {healthy}");
        }
        let gold = Command::new("kubectl")
            .args(["apply", "-f", "-", "--kubeconfig"])
            .arg(&sim.kubeconfig)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .and_then(|mut child| {
                child.stdin.take().unwrap().write_all(
                    br#"{"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "vsphere-gold"}, "provisioner": "kubernetes.io/vsphere-volume", "parameters": {"storagePolicyName": "Gold"}}"#,
                )?;
                child.wait()
            })
            .unwrap();
        assert!(gold.success());
        let broken = scan(&vcsim.url, "NoSuchDC");
        assert_eq!(
            with_code(&broken, "VSPHERE_DATASTORE_MISSING").len(),
            3,
            "{broken}"
        );
        assert_eq!(
            with_code(&broken, "VSPHERE_STORAGE_POLICY_MISSING"),
            vec!["StorageClass/vsphere-gold"]
        );
        sim.kubectl_ok(&["delete", "storageclass", "vsphere-gold"]);
        {
            // Another vCenter: vcsim's own API 6.5 and an empty vsanDatastore.
            let old = super::vcsim_process::start_vcsim(USER, PASSWORD, &["-datastore", DATASTORE]);
            let report = scan(&old.url, "DC0");
            assert_eq!(
                with_code(&report, "VSPHERE_VCENTER_VERSION"),
                vec!["CSIDriver/csi.vsphere.vmware.com"]
            );
            assert_eq!(
                with_code(&report, "VSPHERE_VMDK_MISSING").len(),
                3,
                "{report}"
            );
        }

        let vcenter = [
            "--vcenter",
            vcsim.url.as_str(),
            "--vcenter-user",
            USER,
            "--vcenter-datacenters",
            "DC0",
        ];
        let run_args = |args: Vec<&str>| run_with_password(&sim, &args);

        // A wrong datacenter: every PV's datastore is missing, named with its field.
        let wrong_dc = run_args(plan_args(&[
            "--vcenter",
            vcsim.url.as_str(),
            "--vcenter-user",
            USER,
            "--vcenter-datacenters",
            "NoSuchDC",
        ]));
        assert_eq!(wrong_dc.status.code(), Some(1), "{}", stderr(&wrong_dc));
        let text = stderr(&wrong_dc);
        assert_eq!(
            text.matches("VSPHERE_DATASTORE_MISSING").count(),
            3,
            "{text}"
        );
        assert!(text.contains("spec.vsphereVolume.volumePath"), "{text}");

        // The vCenter checks pass; plan is read-only, so the unregistered VMDKs are deferred
        // to migrate (which registers them) rather than invented.
        let plan = run_args(plan_args(&vcenter));
        let plan_err = stderr(&plan);
        assert_eq!(plan.status.code(), Some(1), "{plan_err}");
        assert!(!plan_err.contains("VSPHERE_"), "{plan_err}");
        assert!(
            plan_err.contains("not registered with CNS yet"),
            "{plan_err}"
        );
        assert!(fcd_ids(&vcsim.url).is_empty(), "plan registered nothing");

        let work_dir = std::env::temp_dir().join(format!(
            "csi-migrate-e2e-vsphere-work-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&work_dir);
        let mut migrate = vec![
            "migrate",
            "statefulset",
            "web",
            "-n",
            "default",
            "--to-storageclass",
            "vsphere-thin-csi",
            "--work-dir",
            work_dir.to_str().unwrap(),
            "--yes",
            "--timeout",
            "60",
        ];
        migrate.extend_from_slice(&vcenter);
        let done = run_with_password(&sim, &migrate);
        assert!(done.status.success(), "{}", stderr(&done));

        // Every claim is on a CSI PV naming the FCD id vcsim holds for its VMDK.
        let ids = fcd_ids(&vcsim.url);
        assert_eq!(ids.len(), 3, "{ids:?}");
        let pvs: serde_json::Value =
            serde_json::from_str(&sim.kubectl_ok(&["get", "pv", "-o", "json"])).unwrap();
        for i in 0..3 {
            let claim: serde_json::Value = serde_json::from_str(&sim.kubectl_ok(&[
                "get",
                "pvc",
                &format!("data-web-{i}"),
                "-n",
                "default",
                "-o",
                "json",
            ]))
            .unwrap();
            let volume = claim["spec"]["volumeName"].as_str().unwrap();
            let pv = pvs["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["metadata"]["name"] == volume)
                .unwrap();
            assert_eq!(pv["spec"]["csi"]["driver"], "csi.vsphere.vmware.com");
            let handle = pv["spec"]["csi"]["volumeHandle"].as_str().unwrap();
            assert!(
                ids.values().any(|id| id == handle),
                "{handle} not in {ids:?}"
            );
        }
        // The pods run again on those volumes.
        let pods: serde_json::Value =
            serde_json::from_str(&sim.kubectl_ok(&["get", "pods", "-n", "default", "-o", "json"]))
                .unwrap();
        let running = pods["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["status"]["phase"] == "Running")
            .count();
        assert_eq!(running, 3);
        // The records say path → id, and that vcsim could not protect the disks.
        let records: serde_json::Value = serde_json::from_str(&sim.kubectl_ok(&[
            "get",
            "cnsvspherevolumemigrations",
            "-o",
            "json",
        ]))
        .unwrap();
        let records = records["items"].as_array().unwrap();
        assert_eq!(records.len(), 3);
        for record in records {
            let path = record["spec"]["volumepath"].as_str().unwrap();
            assert_eq!(
                record["spec"]["volumeid"].as_str(),
                ids.get(path).map(String::as_str)
            );
            assert_eq!(record["spec"]["protectvolumefromvmdelete"], false);
        }
        // Every byte unchanged, in the sim's view and in vcsim's files.
        assert_eq!(disk_checksums(&sim), before);
        for (path, sha) in &before {
            assert_eq!(&sha256_of(&flat_file(&datastore_dir, path)), sha, "{path}");
        }
        // The password is nowhere: not in output, not in the work dir.
        for output in [&wrong_dc, &plan, &done] {
            assert!(!stdout(output).contains(PASSWORD));
            assert!(!stderr(output).contains(PASSWORD));
        }
        let files = files_under(&work_dir);
        assert!(!files.is_empty());
        for file in files {
            let bytes = std::fs::read(&file).unwrap();
            assert!(
                !String::from_utf8_lossy(&bytes).contains(PASSWORD),
                "{} holds the password",
                file.display()
            );
        }
        let _ = std::fs::remove_dir_all(&work_dir);
    }
}
