//! Errors returned by the translators, one variant per way a translation can fail.

use thiserror::Error;

/// Why an object could not be translated.
///
/// Messages follow upstream csi-translation-lib where it has one, and name the
/// field at fault otherwise, so a user can find what to fix.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TranslateError {
    /// The StorageClass translation was asked for a plugin name no translator handles.
    #[error("could not find in-tree storage class parameter translation logic for {}", go_quote(.0))]
    UnknownStorageClassPlugin(String),

    /// A PersistentVolume or inline volume sets no in-tree source that any plugin supports.
    #[error("could not find in-tree plugin translation logic for {}", go_quote(.0))]
    NoPluginForObject(String),

    /// A CSI PersistentVolume names a driver that has no in-tree counterpart.
    #[error("could not find in-tree plugin translation logic for {0}")]
    UnknownCsiDriver(String),

    /// A CSI driver name has no in-tree plugin registered for it (name lookups, volume handle repair).
    #[error("could not find In-Tree driver name for CSI plugin {0}")]
    NoInTreePluginForDriver(String),

    /// An in-tree plugin name has no CSI driver registered for it.
    #[error("could not find CSI Driver name for plugin {0}")]
    NoCsiDriverForPlugin(String),

    /// An in-tree → CSI translation was asked for an object without `spec.csi`.
    #[error("persistent volume {0:?} has no spec.csi source")]
    MissingCsiSource(String),

    /// A plugin was handed an object that does not carry its source (`field` names the field).
    #[error("{field} not defined on {object}")]
    MissingSource {
        /// The field path that must be set, e.g. `spec.gcePersistentDisk`.
        field: &'static str,
        /// `persistent volume "<name>"` or `volume "<name>"`.
        object: String,
    },

    /// A PersistentVolume or volume sets more than one volume source, which the API
    /// server rejects; upstream would pick one at random (Go map order).
    #[error("{object} sets more than one volume source: {first} and {second}")]
    MultipleSources {
        /// `persistent volume "<name>"` or `volume "<name>"`.
        object: String,
        /// The first source field found, in registry order.
        first: &'static str,
        /// The second source field found.
        second: &'static str,
    },

    /// A StorageClass sets `zone`/`zones` and `allowedTopologies` together.
    #[error("cannot simultaneously set allowed topologies and zone/zones parameters")]
    ZonesWithAllowedTopologies,

    /// A StorageClass sets both `zone` and `zones`; the in-tree provisioners refuse this too.
    #[error("StorageClass parameters {zone:?} and {zones:?} cannot both be set")]
    ZoneAndZones {
        /// The `zone` key as spelled in the StorageClass.
        zone: String,
        /// The `zones` key as spelled in the StorageClass.
        zones: String,
    },

    /// Two StorageClass parameters translate to the same CSI parameter with different values
    /// (e.g. `fstype` and `csi.storage.k8s.io/fstype`, or `Zone` and `zone`).
    #[error(
        "StorageClass parameters {first:?} and {second:?} both translate to {target:?} with different values"
    )]
    ConflictingParameters {
        /// The first source key, in sorted key order.
        first: String,
        /// The second source key.
        second: String,
        /// The CSI parameter both map to.
        target: String,
    },

    /// Zone labels could not be turned into a region (GCE regional disks, rollback topology).
    #[error("{field}: failed to get region from zones: {error}")]
    Region {
        /// Where the zones came from, e.g. `metadata.labels[topology.kubernetes.io/zone]`
        /// or `spec.nodeAffinity.required.nodeSelectorTerms[0]`.
        field: String,
        /// Why no single region follows from them.
        error: RegionError,
    },

    /// A volume handle does not have the shape the driver uses.
    #[error("invalid volume handle {handle:?} in {field}: {reason}")]
    InvalidVolumeHandle {
        /// The offending handle.
        handle: String,
        /// Where it came from, e.g. `spec.csi.volumeHandle`.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },

    /// A GCE node ID does not look like `projects/<p>/zones/<z>/instances/<n>`.
    #[error("invalid node ID {node_id:?}: {reason}")]
    InvalidNodeId {
        /// The offending node ID.
        node_id: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The `partition` volume attribute is not a decimal integer.
    #[error("invalid partition {value:?} in spec.csi.volumeAttributes: not an integer")]
    InvalidPartition {
        /// The attribute value.
        value: String,
    },

    /// An AWS volume ID of the form `aws://…` cannot be reduced to `vol-…`.
    #[error("invalid AWS EBS volume ID {id:?} in {field}: {reason}")]
    InvalidEbsVolumeId {
        /// The offending ID.
        id: String,
        /// Where it came from.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// An Azure Disk uses a `kind` other than `Managed` (blob disks cannot be migrated).
    #[error("kind({0}) is not supported in csi migration (spec.azureDisk.kind)")]
    UnsupportedAzureDiskKind(String),

    /// An Azure File PV has neither `secretNamespace` nor a `claimRef` namespace.
    #[error(
        "could not find a secret namespace in PersistentVolumeSource or ClaimRef (spec.azureFile.secretNamespace)"
    )]
    MissingSecretNamespace,

    /// An RBD StorageClass has no `adminSecretName`.
    #[error("missing Ceph admin secret name (parameters.adminSecretName)")]
    MissingCephAdminSecret,

    /// An RBD StorageClass has no `monitors`.
    #[error("missing Ceph monitors (parameters.monitors)")]
    MissingCephMonitors,
}

/// Why a set of zones does not name exactly one region.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RegionError {
    /// No zone values were available (for example a node selector term with only a hostname).
    #[error("no zones specified")]
    NoZones,
    /// A GCE zone is not `<locale>-<region>-<zone>`.
    #[error("zone in unexpected format, expected: {{locale}}-{{region}}-{{zone}}, got: {0}")]
    UnexpectedGceZone(String),
    /// An AWS zone matches none of the availability, local or wavelength zone shapes.
    #[error("Unexpected zone format: {0} is not a valid AWS zone")]
    UnexpectedAwsZone(String),
    /// The zones belong to more than one region.
    #[error("multiple or no regions gotten from zones, got: {0:?}")]
    MultipleRegions(Vec<String>),
}

#[cfg(test)]
impl TranslateError {
    /// A region error at `field`, for table tests.
    pub(crate) fn region(field: &str, error: RegionError) -> Self {
        Self::Region {
            field: field.to_owned(),
            error,
        }
    }
}

/// Quotes a string as Go's `%#v` (`strconv.Quote`) does, for upstream's messages:
/// `\a \b \f \n \r \t \v`, `\xHH` for other ASCII controls, `\uHHHH` / `\UHHHHHHHH`
/// for characters Go does not print (controls, spaces other than ` `, format and
/// private-use characters; unassigned code points are printed as they are).
fn go_quote(s: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        let code = u32::from(c);
        let _ = match c {
            '"' => out.write_str("\\\""),
            '\\' => out.write_str("\\\\"),
            '\u{7}' => out.write_str("\\a"),
            '\u{8}' => out.write_str("\\b"),
            '\u{c}' => out.write_str("\\f"),
            '\n' => out.write_str("\\n"),
            '\r' => out.write_str("\\r"),
            '\t' => out.write_str("\\t"),
            '\u{b}' => out.write_str("\\v"),
            _ if code < 0x20 || code == 0x7f => write!(out, "\\x{code:02x}"),
            _ if go_printable(c) => out.write_char(c),
            _ if code < 0x10000 => write!(out, "\\u{code:04x}"),
            _ => write!(out, "\\U{code:08x}"),
        };
    }
    out.push('"');
    out
}

fn go_printable(c: char) -> bool {
    !(c.is_control()
        || (c.is_whitespace() && c != ' ')
        || matches!(c,
            '\u{ad}' | '\u{600}'..='\u{605}' | '\u{61c}' | '\u{6dd}' | '\u{70f}' | '\u{180e}'
            | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{206f}'
            | '\u{feff}' | '\u{fff9}'..='\u{fffb}' | '\u{e000}'..='\u{f8ff}'
            | '\u{e0001}'..='\u{e007f}' | '\u{f0000}'..='\u{10ffff}'))
}

/// Result type of this crate.
pub type Result<T, E = TranslateError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_quoted_like_go_sharp_v() {
        let cases = [
            ("plain_name", "pv-1", r#""pv-1""#),
            ("quote_and_backslash", r#"a"b\c"#, r#""a\"b\\c""#),
            (
                "named_escapes",
                "\u{7}\u{8}\u{c}\n\r\t\u{b}",
                r#""\a\b\f\n\r\t\v""#,
            ),
            (
                "other_ascii_controls_as_hex",
                "\0\u{1b}\u{7f}",
                r#""\x00\x1b\x7f""#,
            ),
            (
                "printable_unicode_kept",
                "zöne-é\u{301}-日本",
                "\"zöne-é\u{301}-日本\"",
            ),
            (
                "non_printable_unicode_escaped",
                "\u{85}\u{a0}\u{ad}\u{2028}\u{feff}\u{10ffff}",
                r#""\u0085\u00a0\u00ad\u2028\ufeff\U0010ffff""#,
            ),
        ];
        for (name, input, want) in cases {
            assert_eq!(go_quote(input), want, "case {name:?}");
        }
        assert_eq!(
            TranslateError::NoPluginForObject("a\tb".into()).to_string(),
            r#"could not find in-tree plugin translation logic for "a\tb""#
        );
    }
}
