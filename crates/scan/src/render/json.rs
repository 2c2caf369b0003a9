//! The `-o json` output: the report as pretty JSON, schema `csi-migrate.scan/v1` (see docs/scan-json.md).

use crate::report::Report;

/// The report as pretty-printed JSON with a trailing newline.
pub fn render(report: &Report) -> Result<String, serde_json::Error> {
    let mut text = serde_json::to_string_pretty(report)?;
    text.push('\n');
    Ok(text)
}

/// Writes the report as pretty JSON with a trailing newline, without building the text first.
pub fn write(report: &Report, out: &mut impl std::io::Write) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, report)?;
    out.write_all(b"\n")
}
