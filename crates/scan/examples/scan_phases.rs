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
/// User + system CPU time of the process so far, in seconds (from /proc/self/stat).
fn cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}
fn main() {
    let path = std::env::args().nth(1).unwrap();
    eprintln!(
        "sizes: pv {} pvc {} pod {}",
        size_of::<csi_migrate_scan::objects::PersistentVolume>(),
        size_of::<csi_migrate_scan::objects::PersistentVolumeClaim>(),
        size_of::<csi_migrate_scan::objects::Pod>()
    );
    let t = Instant::now();
    let snapshot = csi_migrate_scan::load::files::load_paths(&[path.into()]).unwrap();
    eprintln!("load {:?} cpu {:.2}s {}", t.elapsed(), cpu(), rss());
    let t = Instant::now();
    let options = csi_migrate_scan::ScanOptions::default();
    let view = csi_migrate_scan::view::ClusterView::new(&snapshot, &options);
    eprintln!("view {:?} cpu {:.2}s {}", t.elapsed(), cpu(), rss());
    let mut findings = Vec::new();
    for rule in csi_migrate_scan::rules::RULES {
        let t = Instant::now();
        let before = findings.len();
        rule.run(&view, &mut findings);
        let spent = t.elapsed();
        if spent.as_millis() >= 5 {
            eprintln!(
                "  rule {} {:?} ({} findings)",
                rule.code(),
                spent,
                findings.len() - before
            );
        }
    }
    let t = Instant::now();
    let inventory = csi_migrate_scan::inventory::build(&view);
    eprintln!("  inventory {:?}", t.elapsed());
    let t = Instant::now();
    let workloads = csi_migrate_scan::readiness::assess(&view, &findings);
    eprintln!("  readiness {:?}", t.elapsed());
    drop((inventory, workloads, findings));
    let t = Instant::now();
    drop(view);
    eprintln!("  drop view {:?}", t.elapsed());
    let t = Instant::now();
    let report = csi_migrate_scan::scan(&snapshot, &options);
    eprintln!(
        "scan {:?} cpu {:.2}s {} findings {}",
        t.elapsed(),
        cpu(),
        rss(),
        report.findings.len()
    );
    let t = Instant::now();
    let json = csi_migrate_scan::render::json::render(&report).unwrap();
    eprintln!(
        "json {:?} cpu {:.2}s {} bytes {}",
        t.elapsed(),
        cpu(),
        rss(),
        json.len()
    );
    let t = Instant::now();
    drop((json, report));
    eprintln!("drop report {:?}", t.elapsed());
    let t = Instant::now();
    drop(snapshot);
    eprintln!("drop snapshot {:?}", t.elapsed());
}
