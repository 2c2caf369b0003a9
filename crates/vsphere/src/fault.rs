//! SOAP faults returned by vCenter (vim25 and CNS), as typed values.

use std::fmt;

use crate::xml::Element;

/// The fault types csi-migrate reacts to; everything else is [`FaultKind::Other`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// The request had no valid session (not logged in, or the session expired).
    NotAuthenticated,
    /// Login was refused (wrong user name or password).
    InvalidLogin,
    /// The referenced object (disk, volume, managed object) does not exist.
    NotFound,
    /// The object already exists; for `RegisterDisk` on a real vCenter it carries the FCD id.
    AlreadyExists,
    /// An argument was rejected; vcsim also uses this for re-registering a disk and for a
    /// missing VMDK file.
    InvalidArgument,
    /// A datastore file or directory does not exist.
    FileNotFound,
    /// A datastore file or directory already exists.
    FileAlreadyExists,
    /// The server does not implement the method.
    MethodNotFound,
    /// CNS: the disk is already registered as a CNS volume (carries `volumeId`).
    CnsAlreadyRegistered,
    /// Any other fault; see [`Fault::name`].
    Other,
}

impl FaultKind {
    fn from_name(name: &str) -> Self {
        match name {
            "NotAuthenticated" => Self::NotAuthenticated,
            "InvalidLogin" => Self::InvalidLogin,
            "NotFound" => Self::NotFound,
            "AlreadyExists" => Self::AlreadyExists,
            "InvalidArgument" => Self::InvalidArgument,
            "FileNotFound" => Self::FileNotFound,
            "FileAlreadyExists" => Self::FileAlreadyExists,
            "MethodNotFound" => Self::MethodNotFound,
            "CnsAlreadyRegisteredFault" => Self::CnsAlreadyRegistered,
            _ => Self::Other,
        }
    }
}

/// A fault as vCenter reported it: type name, human message and the scalar fields of the
/// fault object (e.g. `invalidProperty`, `name`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// Classified fault type.
    pub kind: FaultKind,
    /// The vSphere type name, e.g. `InvalidLogin`.
    pub name: String,
    /// `faultstring` or `localizedMessage`.
    pub message: String,
    /// Scalar fields of the fault object in document order, e.g. `("invalidProperty", "path")`.
    pub fields: Vec<(String, String)>,
}

impl Fault {
    /// Value of a scalar field of the fault object.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Builds a fault from the detail object (`<XxxFault xsi:type="Xxx">…`) and a message.
    pub(crate) fn from_detail(detail: Option<&Element>, message: &str) -> Self {
        let name = detail
            .map(|d| match &d.xsi_type {
                Some(t) => t.clone(),
                None => d.name.strip_suffix("Fault").unwrap_or(&d.name).to_owned(),
            })
            .unwrap_or_else(|| "UnknownFault".to_owned());
        let mut fields = Vec::new();
        if let Some(detail) = detail {
            collect_fields(detail, &mut fields);
        }
        Self {
            kind: FaultKind::from_name(&name),
            name,
            message: message.trim().to_owned(),
            fields,
        }
    }

    /// Parses a SOAP `Fault` element (`faultcode`, `faultstring`, `detail`).
    pub(crate) fn from_soap_fault(fault: &Element) -> Self {
        let message = fault.path_text(&["faultstring"]).unwrap_or_default();
        let detail = fault.child("detail").and_then(|d| d.children.first());
        Self::from_detail(detail, message)
    }

    /// Parses a `LocalizedMethodFault` (task `info.error`, CNS per-volume `fault`).
    pub(crate) fn from_localized(error: &Element) -> Self {
        let message = error.path_text(&["localizedMessage"]).unwrap_or_default();
        Self::from_detail(error.child("fault"), message)
    }
}

fn collect_fields(element: &Element, fields: &mut Vec<(String, String)>) {
    for child in &element.children {
        if child.children.is_empty() {
            fields.push((child.name.clone(), child.text.trim().to_owned()));
        } else if child.name == "volumeId" {
            // CNS: <volumeId><id>…</id></volumeId>
            if let Some(id) = child.path_text(&["id"]) {
                fields.push(("volumeId".to_owned(), id.to_owned()));
            }
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name)?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        for (k, v) in &self.fields {
            write!(f, " [{k}={v}]")?;
        }
        Ok(())
    }
}
