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
        let input = format!("{line}\n").repeat(20_000);
        let mut child = Command::new(BIN)
            .args(["translate", "--jsonl"])
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
        assert!(out.status.success(), "exit {:?}", out.status);
        assert_eq!(stderr(&out), "");
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

    /// A running `csi-migrate sim`, stopped on drop.
    struct Sim {
        child: std::process::Child,
        dir: PathBuf,
        kubeconfig: PathBuf,
    }

    impl Sim {
        fn start(name: &str, extra: &[&str]) -> Self {
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
        fn kubectl(&self, args: &[&str]) -> Output {
            Command::new("kubectl")
                .args(args)
                .arg("--cache-dir")
                .arg(self.dir.join("cache"))
                .env("KUBECONFIG", &self.kubeconfig)
                .output()
                .expect("kubectl must be installed to run these tests (.ci/run installs it)")
        }

        fn kubectl_ok(&self, args: &[&str]) -> String {
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
            sim.kubectl_ok(&["delete", "-f", &manifests, "--wait=true", "--timeout=20s"]);
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
    fn kubectl_server_side_apply_patch_and_finalizer_wait() {
        let sim = Sim::start("ssa", &[]);
        let dir = std::env::temp_dir().join(format!("csi-migrate-ssa-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let claim = dir.join("claim.yaml");
        std::fs::write(
            &claim,
            "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: data-0, namespace: default}\n\
             spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}\n",
        )
        .unwrap();
        let applied = sim.kubectl_ok(&["apply", "--server-side", "-f", claim.to_str().unwrap()]);
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

        // Deleting leaves the claim terminating while the protection finalizer is there.
        sim.kubectl_ok(&["delete", "pvc", "data-0", "--wait=false"]);
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
        sim.kubectl_ok(&[
            "patch",
            "pvc",
            "data-0",
            "--type=merge",
            "-p",
            r#"{"metadata":{"finalizers":null}}"#,
        ]);
        let waited = waiter.wait_with_output().unwrap();
        assert!(
            waited.status.success(),
            "kubectl wait: {}{}",
            stdout(&waited),
            stderr(&waited)
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
