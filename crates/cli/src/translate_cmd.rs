//! `csi-migrate translate`: manifests or JSON Lines requests in, translations out.

use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};

use anyhow::anyhow;
use csi_migrate_translate::Translator;
use csi_migrate_translate::jsonl;
use csi_migrate_translate::manifest::{Direction, translate_manifest};

use crate::Failure;
use crate::args::{OutputFormat, Target, TranslateArgs};
use crate::manifest_io::{Source, read_documents, write_json, write_yaml};

/// Runs the command.
pub fn run(args: &TranslateArgs) -> Result<(), Failure> {
    let sources: Vec<Source> = if args.files.is_empty() {
        vec![Source::Stdin]
    } else {
        args.files.iter().map(|f| Source::from_arg(f)).collect()
    };
    if args.jsonl {
        answer_jsonl(&sources)
    } else {
        translate_documents(args, &sources)
    }
}

fn translate_documents(args: &TranslateArgs, sources: &[Source]) -> Result<(), Failure> {
    let translator = Translator::new();
    let direction = match args.to {
        Target::Csi => Direction::ToCsi,
        Target::Intree => Direction::ToInTree,
    };
    let mut translated = Vec::new();
    let mut errors = Vec::new();
    for source in sources {
        for doc in read_documents(source).map_err(Failure::bad_input)? {
            match translate_manifest(&translator, &doc.object, direction) {
                Ok(objects) => translated.extend(objects),
                Err(e) => errors.push(format!("{} document {}: {e}", doc.source, doc.index)),
            }
        }
    }
    if !errors.is_empty() {
        // Nothing is written when anything failed: half a translation is worse than none.
        let count = errors.len();
        let list = errors.join("\n  ");
        return Err(Failure::bad_input(anyhow!(
            "{count} object(s) could not be translated:\n  {list}"
        )));
    }
    let mut out = BufWriter::new(io::stdout().lock());
    match args.output {
        OutputFormat::Yaml => write_yaml(&mut out, &translated)?,
        OutputFormat::Json => write_json(&mut out, translated)?,
    }
    out.flush()?;
    Ok(())
}

fn answer_jsonl(sources: &[Source]) -> Result<(), Failure> {
    let translator = Translator::new();
    let mut out = BufWriter::with_capacity(1 << 16, io::stdout().lock());
    for source in sources {
        let input: Box<dyn Read> = match source {
            Source::Stdin => Box::new(io::stdin().lock()),
            Source::File(path) => Box::new(
                std::fs::File::open(path)
                    .map_err(|e| Failure::bad_input(anyhow!("cannot read {source}: {e}")))?,
            ),
        };
        answer_stream(
            &translator,
            BufReader::with_capacity(1 << 16, input),
            &mut out,
        )?;
    }
    out.flush()?;
    Ok(())
}

/// Answers each line of `input`; output is flushed whenever no more input is
/// buffered, so an interactive peer gets its answer without waiting for more requests.
fn answer_stream<R: Read>(
    translator: &Translator,
    mut input: BufReader<R>,
    out: &mut impl Write,
) -> io::Result<()> {
    let mut line = Vec::new();
    let mut response = Vec::new();
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        let request = line.strip_suffix(b"\n").unwrap_or(&line);
        let request = request.strip_suffix(b"\r").unwrap_or(request);
        response.clear();
        match std::str::from_utf8(request) {
            Ok(text) => jsonl::respond(translator, text, &mut response),
            Err(_) => response
                .extend_from_slice(br#"{"ok":false,"error":"malformed request: not UTF-8"}"#),
        }
        response.push(b'\n');
        out.write_all(&response)?;
        if input.buffer().is_empty() {
            out.flush()?;
        }
    }
}
