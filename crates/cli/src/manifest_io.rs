//! Reading manifests (YAML or JSON, one or many documents) from files or stdin, and writing them.

use std::fmt;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde_json::Value;
use thiserror::Error;

/// Where a manifest came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Standard input.
    Stdin,
    /// A file.
    File(PathBuf),
}

impl Source {
    /// `-` means stdin, anything else a file.
    pub fn from_arg(path: &Path) -> Self {
        if path.as_os_str() == "-" {
            Self::Stdin
        } else {
            Self::File(path.to_owned())
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Stdin => f.write_str("<stdin>"),
            Self::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// Why manifests could not be read.
#[derive(Debug, Error)]
pub enum ReadError {
    /// The file or stdin could not be read.
    #[error("cannot read {source_name}: {error}")]
    Io {
        /// What was being read.
        source_name: Source,
        /// The I/O error.
        error: io::Error,
    },
    /// The text is neither valid JSON nor valid YAML.
    #[error("{source_name} is not valid YAML or JSON: {message}")]
    Syntax {
        /// What was being read.
        source_name: Source,
        /// The parser's message.
        message: String,
    },
}

/// One document of an input, with its position for error messages.
#[derive(Debug)]
pub struct Document {
    /// Where it came from.
    pub source: Source,
    /// 1-based index of the document in its source.
    pub index: usize,
    /// The object.
    pub object: Value,
}

/// Reads every document of `source`: a JSON value (or several concatenated), or
/// multi-document YAML. Empty documents are skipped.
pub fn read_documents(source: &Source) -> Result<Vec<Document>, ReadError> {
    let io_error = |error| ReadError::Io {
        source_name: source.clone(),
        error,
    };
    let text = match source {
        Source::Stdin => {
            let mut text = String::new();
            io::stdin()
                .lock()
                .read_to_string(&mut text)
                .map_err(io_error)?;
            text
        }
        Source::File(path) => std::fs::read_to_string(path).map_err(io_error)?,
    };
    let objects = parse_documents(&text).map_err(|message| ReadError::Syntax {
        source_name: source.clone(),
        message,
    })?;
    Ok(objects
        .into_iter()
        .filter(|o| !o.is_null())
        .enumerate()
        .map(|(i, object)| Document {
            source: source.clone(),
            index: i + 1,
            object,
        })
        .collect())
}

/// Parses JSON (when the text starts like JSON) or multi-document YAML.
pub fn parse_documents(text: &str) -> Result<Vec<Value>, String> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        let values: Result<Vec<Value>, _> = serde_json::Deserializer::from_str(text)
            .into_iter()
            .collect();
        if let Ok(values) = values {
            return Ok(values);
        }
    }
    csi_migrate_scan::load::files::yaml_documents(text).map_err(|e| e.to_string())
}

/// Writes objects as YAML documents separated by `---`.
pub fn write_yaml(out: &mut impl Write, objects: &[Value]) -> io::Result<()> {
    for (i, object) in objects.iter().enumerate() {
        if i > 0 {
            out.write_all(b"---\n")?;
        }
        let text = serde_saphyr::to_string(object).map_err(io::Error::other)?;
        out.write_all(text.as_bytes())?;
        if !text.ends_with('\n') {
            out.write_all(b"\n")?;
        }
    }
    Ok(())
}

/// Writes one object as pretty JSON, or several as a v1 List.
pub fn write_json(out: &mut impl Write, objects: Vec<Value>) -> io::Result<()> {
    let value = match <[Value; 1]>::try_from(objects) {
        Ok([one]) => one,
        Err(items) => serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items}),
    };
    serde_json::to_writer_pretty(&mut *out, &value)?;
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_document_yaml_skips_empty_documents() {
        let docs =
            parse_documents("---\na: 1\n---\n# only a comment\n---\nb: [x]\n").unwrap_or_default();
        let docs: Vec<_> = docs.into_iter().filter(|d| !d.is_null()).collect();
        assert_eq!(
            docs,
            vec![serde_json::json!({"a": 1}), serde_json::json!({"b": ["x"]})]
        );
    }

    #[test]
    fn concatenated_json_objects_are_separate_documents() {
        let docs = parse_documents("{\"a\":1}\n{\"b\":2}").unwrap_or_default();
        assert_eq!(docs.len(), 2);
    }

    #[test]
    fn invalid_text_is_an_error() {
        assert!(parse_documents("a: [1, 2\n").is_err());
    }
}
