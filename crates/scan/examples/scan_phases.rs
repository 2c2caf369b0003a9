//! Times the phases of a scan of one dump: `scan_phases DUMP`.
#![allow(clippy::unwrap_used)]
use std::time::Instant;
fn rss() -> String {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("VmRSS") || l.starts_with("VmHWM"))
        .collect::<Vec<_>>()
        .join(" ")
}
fn main() {
    let path = std::env::args().nth(1).unwrap();
    eprintln!(
        "sizes: pv {} pvc {} pod {}",
        size_of::<k8s_openapi::api::core::v1::PersistentVolume>(),
        size_of::<k8s_openapi::api::core::v1::PersistentVolumeClaim>(),
        size_of::<k8s_openapi::api::core::v1::Pod>()
    );
    let t = Instant::now();
    let snapshot = csi_migrate_scan::load::files::load_paths(&[path.into()]).unwrap();
    eprintln!("load {:?} {}", t.elapsed(), rss());
    let t = Instant::now();
    let options = csi_migrate_scan::ScanOptions::default();
    let view = csi_migrate_scan::view::ClusterView::new(&snapshot, &options);
    eprintln!("view {:?} {}", t.elapsed(), rss());
    drop(view);
    let t = Instant::now();
    let report = csi_migrate_scan::scan(&snapshot, &options);
    eprintln!(
        "scan {:?} {} findings {}",
        t.elapsed(),
        rss(),
        report.findings.len()
    );
    let t = Instant::now();
    let json = csi_migrate_scan::render::json::render(&report).unwrap();
    eprintln!("json {:?} {} bytes {}", t.elapsed(), rss(), json.len());
}
