//! Reader for the vSphere CSI driver's `csi-vsphere.conf` (gcfg/INI): `[Global]` defaults and `[VirtualCenter "host"]` sections.

use crate::client::Password;

/// Why the file could not be read; never quotes a line (it may hold the password).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CsiConfigError {
    /// A line is neither a section header, a `key = value` pair, a comment nor blank.
    #[error("line {line}: expected [section] or key = value")]
    Syntax {
        /// 1-based line number.
        line: usize,
    },
    /// A quoted value is not closed.
    #[error("line {line}: unterminated quoted value")]
    Unterminated {
        /// 1-based line number.
        line: usize,
    },
    /// No `[VirtualCenter "host"]` section.
    #[error("no [VirtualCenter \"host\"] section")]
    NoVirtualCenter,
}

/// One vCenter of the file, with `[Global]` values filled in where the section has none.
#[derive(Clone, Debug)]
pub struct VirtualCenterEntry {
    /// Host name or address from the section header.
    pub host: String,
    /// `port` (default 443).
    pub port: u16,
    /// `user`.
    pub user: Option<String>,
    /// `password` (redacted in `Debug`).
    pub password: Option<Password>,
    /// `insecure-flag` (`true`/`1`).
    pub insecure: bool,
    /// `datacenters`, split on `,` and trimmed.
    pub datacenters: Vec<String>,
    /// `ca-file`.
    pub ca_file: Option<String>,
}

/// The parts of `csi-vsphere.conf` csi-migrate uses.
#[derive(Clone, Debug)]
pub struct CsiVsphereConfig {
    /// `[Global] cluster-id`.
    pub cluster_id: Option<String>,
    /// Every `[VirtualCenter "…"]` section in file order.
    pub virtual_centers: Vec<VirtualCenterEntry>,
}

/// One `[name "subsection"]` section: lower-cased name, subsection, key/value pairs in order.
type Section = (String, Option<String>, Vec<(String, String)>);

impl CsiVsphereConfig {
    /// Parses the file's text.
    pub fn parse(text: &str) -> Result<Self, CsiConfigError> {
        let mut sections: Vec<Section> = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line_no = index + 1;
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                let header = header.trim();
                let (name, sub) = match header.split_once(char::is_whitespace) {
                    Some((name, rest)) => {
                        let rest = rest.trim();
                        let sub = rest
                            .strip_prefix('"')
                            .and_then(|r| r.strip_suffix('"'))
                            .ok_or(CsiConfigError::Syntax { line: line_no })?;
                        (name, Some(sub.to_owned()))
                    }
                    None => (header, None),
                };
                sections.push((name.to_ascii_lowercase(), sub, Vec::new()));
                continue;
            }
            let (key, value) = line
                .split_once('=')
                .ok_or(CsiConfigError::Syntax { line: line_no })?;
            let value = unquote(value.trim(), line_no)?;
            let section = sections
                .last_mut()
                .ok_or(CsiConfigError::Syntax { line: line_no })?;
            section.2.push((key.trim().to_ascii_lowercase(), value));
        }
        let get = |pairs: &[(String, String)], key: &str| {
            pairs
                .iter()
                .rev()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
        };
        let global: Vec<(String, String)> = sections
            .iter()
            .filter(|(name, _, _)| name == "global")
            .flat_map(|(_, _, pairs)| pairs.clone())
            .collect();
        let mut virtual_centers = Vec::new();
        for (name, sub, pairs) in &sections {
            let (true, Some(host)) = (name == "virtualcenter", sub) else {
                continue;
            };
            let value = |key: &str| get(pairs, key).or_else(|| get(&global, key));
            virtual_centers.push(VirtualCenterEntry {
                host: host.clone(),
                port: value("port").and_then(|p| p.parse().ok()).unwrap_or(443),
                user: value("user"),
                password: value("password").map(Password::new),
                insecure: value("insecure-flag")
                    .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1")),
                datacenters: value("datacenters")
                    .map(|d| {
                        d.split(',')
                            .map(|s| s.trim().to_owned())
                            .filter(|s| !s.is_empty())
                            .collect()
                    })
                    .unwrap_or_default(),
                ca_file: value("ca-file"),
            });
        }
        if virtual_centers.is_empty() {
            return Err(CsiConfigError::NoVirtualCenter);
        }
        Ok(Self {
            cluster_id: get(&global, "cluster-id"),
            virtual_centers,
        })
    }
}

fn unquote(value: &str, line: usize) -> Result<String, CsiConfigError> {
    let Some(inner) = value.strip_prefix('"') else {
        return Ok(value.to_owned());
    };
    let inner = inner
        .strip_suffix('"')
        .ok_or(CsiConfigError::Unterminated { line })?;
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match (c, c == '\\') {
            (_, true) => match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(other) => out.push(other),
                None => return Err(CsiConfigError::Unterminated { line }),
            },
            (c, false) => out.push(c),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const CONF: &str = r#"
[Global]
cluster-id = "demo-cluster"
user = "global-user@vsphere.local"
port = "8443"

# the one vCenter
[VirtualCenter "10.0.0.5"]
insecure-flag = "true"
user = "administrator@vsphere.local"
password = "p\"ss;#word"
datacenters = "DC0, folder/DC 1"
"#;

    #[test]
    fn parses_global_and_virtual_center_sections() {
        let config = CsiVsphereConfig::parse(CONF).unwrap();
        assert_eq!(config.cluster_id.as_deref(), Some("demo-cluster"));
        let vc = &config.virtual_centers[0];
        assert_eq!(vc.host, "10.0.0.5");
        assert_eq!(vc.port, 8443, "inherited from [Global]");
        assert!(vc.insecure);
        assert_eq!(vc.user.as_deref(), Some("administrator@vsphere.local"));
        assert_eq!(vc.password.as_ref().unwrap().expose(), "p\"ss;#word");
        assert_eq!(vc.datacenters, vec!["DC0", "folder/DC 1"]);
        assert!(!format!("{config:?}").contains("ss;#word"));
    }

    #[test]
    fn errors_never_quote_the_line() {
        let err = CsiVsphereConfig::parse("[Global]\npassword \"s3cret\"\n").unwrap_err();
        assert_eq!(err, CsiConfigError::Syntax { line: 2 });
        assert!(!err.to_string().contains("s3cret"));
        let err =
            CsiVsphereConfig::parse("[VirtualCenter \"vc\"]\npassword = \"s3cret\n").unwrap_err();
        assert!(!err.to_string().contains("s3cret"));
        assert_eq!(
            CsiVsphereConfig::parse("[Global]\nuser = a\n").unwrap_err(),
            CsiConfigError::NoVirtualCenter
        );
    }
}
