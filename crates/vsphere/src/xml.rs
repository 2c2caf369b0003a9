//! A small owned XML tree for reading SOAP responses, and escaping for hand-built requests.

use quick_xml::Reader;
use quick_xml::XmlVersion;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesStart, Event};

/// Errors from parsing a SOAP response body.
#[derive(Debug, thiserror::Error)]
pub enum XmlError {
    /// The body is not well-formed XML (quick-xml rejected it).
    #[error("response is not well-formed XML: {0}")]
    Syntax(String),
    /// The body has no root element at all (empty or only a prolog).
    #[error("response contains no XML element")]
    Empty,
    /// The body references an entity other than the five predefined ones or a character reference.
    #[error("response uses unknown XML entity &{0};")]
    UnknownEntity(String),
}

/// One element: local name (namespace prefix dropped), attributes, text and children.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Element {
    /// Local name, e.g. `RegisterDiskResponse`.
    pub name: String,
    /// Value of an `xsi:type` attribute (any *prefixed* `type` attribute, e.g.
    /// `XMLSchema-instance:type`, which is how vSphere marks the concrete type of a value).
    pub xsi_type: Option<String>,
    /// Unprefixed attributes, e.g. `type` of a managed-object reference.
    pub attributes: Vec<(String, String)>,
    /// Concatenated text content directly inside this element.
    pub text: String,
    /// Child elements in document order.
    pub children: Vec<Element>,
}

impl Element {
    /// First direct child with this local name.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// All direct children with this local name.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// Follows a chain of direct children, e.g. `["returnval", "config", "id", "id"]`.
    pub fn path(&self, names: &[&str]) -> Option<&Element> {
        names
            .iter()
            .try_fold(self, |element, name| element.child(name))
    }

    /// Text of the element reached by [`Element::path`], trimmed.
    pub fn path_text(&self, names: &[&str]) -> Option<&str> {
        self.path(names).map(|e| e.text.trim())
    }

    /// First descendant (depth-first, including `self`) with this local name.
    pub fn find(&self, name: &str) -> Option<&Element> {
        if self.name == name {
            return Some(self);
        }
        self.children.iter().find_map(|c| c.find(name))
    }

    /// Value of an unprefixed attribute.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn start_element(start: &BytesStart<'_>) -> Result<Element, XmlError> {
    let name = start.local_name().as_ref().to_owned();
    let mut element = Element {
        name,
        ..Element::default()
    };
    for attribute in start.attributes() {
        let attribute = attribute.map_err(|e| XmlError::Syntax(e.to_string()))?;
        let key = attribute.key;
        let value = attribute
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|e| XmlError::Syntax(e.to_string()))?
            .into_owned();
        let local = key.local_name().as_ref().to_owned();
        let prefixed = key.prefix().is_some();
        if prefixed && local == "type" {
            element.xsi_type = Some(value);
        } else if !prefixed && local != "xmlns" {
            element.attributes.push((local, value));
        }
    }
    Ok(element)
}

/// Parses a whole document and returns its root element.
pub fn parse(document: &str) -> Result<Element, XmlError> {
    let mut reader = Reader::from_str(document);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| XmlError::Syntax(e.to_string()))?;
        match event {
            Event::Start(start) => stack.push(start_element(&start)?),
            Event::Empty(start) => {
                let element = start_element(&start)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None => root = Some(element),
                }
            }
            Event::End(_) => {
                let element = stack
                    .pop()
                    .ok_or_else(|| XmlError::Syntax("unbalanced end tag".into()))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None => root = Some(element),
                }
            }
            Event::Text(text) => {
                if let Some(current) = stack.last_mut() {
                    current.text.push_str(&text.xml10_content());
                }
            }
            Event::CData(data) => {
                if let Some(current) = stack.last_mut() {
                    current.text.push_str(&data.xml10_content());
                }
            }
            Event::GeneralRef(reference) => {
                let resolved = if let Some(ch) = reference
                    .resolve_char_ref()
                    .map_err(|e| XmlError::Syntax(e.to_string()))?
                {
                    ch.to_string()
                } else {
                    let name = reference.xml10_content();
                    resolve_predefined_entity(&name)
                        .ok_or_else(|| XmlError::UnknownEntity(name.to_string()))?
                        .to_string()
                };
                if let Some(current) = stack.last_mut() {
                    current.text.push_str(&resolved);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !stack.is_empty() {
        return Err(XmlError::Syntax("document ended inside an element".into()));
    }
    root.ok_or(XmlError::Empty)
}

/// Escapes text for use in element content or a double-quoted attribute value.
pub fn escape(text: &str) -> String {
    quick_xml::escape::escape(text).into_owned()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_namespaced_types_entities_and_empty_elements() {
        let doc = r#"<?xml version="1.0"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>
<R xmlns="urn:vim25"><returnval type="Datastore">ds&amp;1</returnval>
<v xmlns:XMLSchema-instance="http://www.w3.org/2001/XMLSchema-instance" XMLSchema-instance:type="Foo">a&#32;b&lt;</v><e/></R></soapenv:Body></soapenv:Envelope>"#;
        let root = parse(doc).unwrap();
        assert_eq!(root.name, "Envelope");
        let r = root.path(&["Body", "R"]).unwrap();
        assert_eq!(r.path_text(&["returnval"]), Some("ds&1"));
        assert_eq!(
            r.child("returnval").unwrap().attribute("type"),
            Some("Datastore")
        );
        let v = r.child("v").unwrap();
        assert_eq!(v.xsi_type.as_deref(), Some("Foo"));
        assert_eq!(v.text, "a b<");
        assert!(r.child("e").is_some());
    }

    #[test]
    fn rejects_garbage_and_escapes() {
        assert!(parse("").is_err());
        assert!(parse("<a><b></a>").is_err());
        assert_eq!(escape(r#"a<b>&"c'"#), "a&lt;b&gt;&amp;&quot;c&apos;");
    }
}
