//! `--lookup TABLE --on PATH [--key COLUMN] [--required] [--as NAME]`:
//! dimension widening against a reference table, loaded once.
//!
//! A table is a CSV file with a header line (`.csv`, or `.tsv` separated by
//! tabs; every value a string)
//! or NDJSON, one JSON object per line (`.ndjson`, `.jsonl`, `.json`; values
//! kept as they are). The key column is `--key`, or the CSV's first column.
//! Loading fails, naming the file and line, on a malformed row, a row
//! without the key, or a key that appears twice.
//!
//! The event's value at `--on` (a string, or a number or boolean as its
//! JSON text) is looked up. A key that no row has — or no value at `--on` —
//! gives nothing (`null` with `--into`), or fails the event with
//! `--required`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;

use super::{error_kind, raw, schema, Derived, Event, Flow, Step};
use crate::event::FailureMessage;
use crate::path::FieldPath;

/// The file formats a table can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableFormat {
    /// Comma-separated values with a header line.
    Csv,
    /// One JSON object per line.
    Ndjson,
}

impl TableFormat {
    /// The format a file name implies: NDJSON for `.ndjson`, `.jsonl` and
    /// `.json`, CSV otherwise.
    pub fn from_path(path: &Path) -> Self {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("ndjson") | Some("jsonl") | Some("json") => TableFormat::Ndjson,
            _ => TableFormat::Csv,
        }
    }

    /// The separator of a delimited table: a tab for `.tsv` and `.tab`
    /// files, a comma otherwise.
    pub fn delimiter(file: &str) -> u8 {
        let lower = file.to_ascii_lowercase();
        if lower.ends_with(".tsv") || lower.ends_with(".tab") {
            b'\t'
        } else {
            b','
        }
    }
}

/// A lookup step as described, before its table is loaded.
#[derive(Debug, Clone, PartialEq)]
pub struct LookupSpec {
    /// The table file.
    pub table: PathBuf,
    /// Where the key is in the event.
    pub on: FieldPath,
    /// The key column (the CSV's first column when not given).
    pub key: Option<String>,
    /// Fail events whose key is in no row.
    pub required: bool,
    /// The table's name in results (the file name without extension when
    /// not given).
    pub name: Option<String>,
}

impl LookupSpec {
    /// The table's name in results.
    pub fn table_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| {
            self.table
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "lookup".to_string())
        })
    }
}

struct Row {
    /// `{"table":…,"key":…,"row":ROW}`
    data: Box<[u8]>,
    /// Where ROW is in `data`.
    row_start: usize,
}

/// The lookup step: the table in memory, keyed.
pub struct Lookup {
    name: String,
    file: String,
    on: FieldPath,
    key_column: String,
    required: bool,
    /// Shared by every worker thread's copy of the step.
    rows: Arc<HashMap<Box<str>, Row>>,
}

impl Lookup {
    /// Loads the table. Errors name the file and line.
    pub fn load(spec: &LookupSpec) -> Result<Self> {
        let name = spec.table_name();
        let file = spec.table.display().to_string();
        let mut lookup = Lookup {
            name,
            file,
            on: spec.on.clone(),
            key_column: String::new(),
            required: spec.required,
            rows: Arc::default(),
        };
        let bytes = std::fs::read(&spec.table)
            .with_context(|| format!("cannot read lookup table {}", lookup.file))?;
        match TableFormat::from_path(&spec.table) {
            TableFormat::Csv => lookup.load_csv(&bytes, spec.key.as_deref())?,
            TableFormat::Ndjson => {
                let Some(key) = spec.key.as_deref() else {
                    bail!("{}: an NDJSON table needs --key NAME, the member that holds each row's key", lookup.file);
                };
                lookup.load_ndjson(&bytes, key)?
            }
        }
        Ok(lookup)
    }

    /// How many rows the table has.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True when the table has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    fn load_csv(&mut self, bytes: &[u8], key: Option<&str>) -> Result<()> {
        let delimiter = TableFormat::delimiter(&self.file);
        let lines = Lines::new(bytes);
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(false)
            .delimiter(delimiter)
            .from_reader(bytes);
        let header = reader
            .headers()
            .map_err(|e| anyhow!("{}: {}", self.file, csv_error(&e, &lines, bytes)))?
            .clone();
        if header.is_empty() || (header.len() == 1 && header[0].is_empty()) {
            bail!("{} line 1: the table has no header line", self.file);
        }
        if header.len() == 1 {
            // One column is a valid table, but a header that holds another
            // usual separator is a table read with the wrong one: say so
            // rather than load every row as one string.
            if let Some(sep) = [b';', b'\t', b'|', b',']
                .into_iter()
                .find(|&c| c != delimiter && header[0].as_bytes().contains(&c))
            {
                let (reads, hint) = if delimiter == b'\t' {
                    (
                        "tabs (a .tsv table)",
                        "save it tab-separated, or as .csv if it is comma-separated",
                    )
                } else {
                    (
                        "commas (a .csv table)",
                        "save it comma-separated, or as .tsv if it is tab-separated",
                    )
                };
                bail!(
                    "{} line 1: the header is one column, {:?}, holding {:?}: the table looks separated by {:?}, but it is read as separated by {reads}; {hint}",
                    self.file,
                    &header[0],
                    sep as char,
                    sep as char,
                );
            }
        }
        for (i, col) in header.iter().enumerate() {
            if header.iter().take(i).any(|c| c == col) {
                bail!(
                    "{} line 1: column {col:?} appears twice in the header",
                    self.file
                );
            }
        }
        let key_index = match key {
            Some(k) => header.iter().position(|c| c == k).ok_or_else(|| {
                anyhow!(
                    "{} line 1: no column {k:?} in the header (columns: {})",
                    self.file,
                    header.iter().collect::<Vec<_>>().join(", ")
                )
            })?,
            None => 0,
        };
        self.key_column = header[key_index].to_string();
        let mut first_line: HashMap<Box<str>, u64> = HashMap::new();
        let mut record = csv::StringRecord::new();
        let mut row = Vec::new();
        // Where the last record read starts: the header's, at first.
        let mut last_start = 0;
        loop {
            match reader.read_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {}
                Err(e) => bail!("{}: {}", self.file, csv_error(&e, &lines, bytes)),
            }
            let start = record_start(bytes, record.position());
            last_start = start;
            let line = lines.line_at(start);
            let key = &record[key_index];
            if let Some(first) = first_line.get(key) {
                bail!(
                    "{} line {line}: duplicate key {key:?} in column {:?} (first on line {first})",
                    self.file,
                    self.key_column
                );
            }
            row.clear();
            row.push(b'{');
            for (i, (col, value)) in header.iter().zip(record.iter()).enumerate() {
                if i > 0 {
                    row.push(b',');
                }
                raw::push_str(&mut row, col);
                row.push(b':');
                raw::push_str(&mut row, value);
            }
            row.push(b'}');
            first_line.insert(key.into(), line);
            self.insert(key, &row);
        }
        self.check_quotes(bytes, last_start, delimiter, &lines)
    }

    /// Fails when the record at `start`, the table's last, opens a quoted
    /// field it never closes: the CSV reader takes the rest of the file as
    /// that one field and says nothing.
    fn check_quotes(&self, bytes: &[u8], start: usize, delimiter: u8, lines: &Lines) -> Result<()> {
        match unclosed_quote(&bytes[start..], delimiter) {
            Some(quote) => bail!(
                "{} line {}: a quote opened here is never closed, so the rest of the table would be one field; close it, or double a quote inside a field (\"\")",
                self.file,
                lines.line_at(start + quote)
            ),
            None => Ok(()),
        }
    }

    fn load_ndjson(&mut self, bytes: &[u8], key: &str) -> Result<()> {
        self.key_column = key.to_string();
        let mut first_line: HashMap<Box<str>, u64> = HashMap::new();
        for (n, line) in bytes.split(|&b| b == b'\n').enumerate() {
            let line_no = n as u64 + 1;
            let line = line.trim_ascii();
            if line.is_empty() {
                continue;
            }
            let value: Value = serde_json::from_slice(line)
                .map_err(|e| anyhow!("{} line {line_no}: not valid JSON: {e}", self.file))?;
            let Value::Object(object) = &value else {
                bail!(
                    "{} line {line_no}: each row must be a JSON object",
                    self.file
                );
            };
            let k = match object.get(key) {
                Some(Value::String(s)) => s.clone(),
                Some(v @ (Value::Number(_) | Value::Bool(_))) => v.to_string(),
                Some(other) => bail!(
                    "{} line {line_no}: the key {key:?} must be a string, number or boolean, not {}",
                    self.file,
                    json_kind(other)
                ),
                None => bail!("{} line {line_no}: the row has no key member {key:?}", self.file),
            };
            if let Some(first) = first_line.get(k.as_str()) {
                bail!(
                    "{} line {line_no}: duplicate key {k:?} in {key:?} (first on line {first})",
                    self.file
                );
            }
            first_line.insert(k.as_str().into(), line_no);
            self.insert(&k, line);
        }
        Ok(())
    }

    fn insert(&mut self, key: &str, row: &[u8]) {
        let mut data = Vec::with_capacity(row.len() + key.len() + self.name.len() + 32);
        data.extend_from_slice(br#"{"table":"#);
        raw::push_str(&mut data, &self.name);
        data.extend_from_slice(br#","key":"#);
        raw::push_str(&mut data, key);
        data.extend_from_slice(br#","row":"#);
        let row_start = data.len();
        data.extend_from_slice(row);
        data.push(b'}');
        let rows = Arc::get_mut(&mut self.rows).expect("a table is shared only once loaded");
        rows.insert(
            key.into(),
            Row {
                data: data.into_boxed_slice(),
                row_start,
            },
        );
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Line numbers of a table, whatever its line endings: `\n`, `\r\n` and a
/// lone `\r` each end a line, as they end a record for the CSV reader
/// (whose own count knows only `\n`).
struct Lines {
    /// The byte offset where each line after the first starts.
    starts: Vec<usize>,
}

impl Lines {
    fn new(bytes: &[u8]) -> Self {
        let mut starts = Vec::new();
        for at in memchr::memchr2_iter(b'\n', b'\r', bytes) {
            if bytes[at] == b'\r' && bytes.get(at + 1) == Some(&b'\n') {
                continue;
            }
            starts.push(at + 1);
        }
        Lines { starts }
    }

    /// The 1-based line that byte `offset` is on.
    fn line_at(&self, offset: usize) -> u64 {
        self.starts.partition_point(|&s| s <= offset) as u64 + 1
    }
}

/// Where, in `record` (the raw text of a table's last record, running to
/// the end of the file), a quoted field opens that is never closed.
fn unclosed_quote(record: &[u8], delimiter: u8) -> Option<usize> {
    let mut i = 0;
    let mut field_start = true;
    while i < record.len() {
        let b = record[i];
        if field_start && b == b'"' {
            let open = i;
            i += 1;
            loop {
                match memchr::memchr(b'"', &record[i..]) {
                    None => return Some(open),
                    Some(q) if record.get(i + q + 1) == Some(&b'"') => i += q + 2,
                    Some(q) => {
                        i += q + 1;
                        break;
                    }
                }
            }
            field_start = false;
            continue;
        }
        field_start = b == delimiter || b == b'\n' || b == b'\r';
        i += 1;
    }
    None
}

/// Where a record starts. The CSV reader's position can be the line
/// ending before it (the `\n` of a `\r\n`), so line endings are skipped.
fn record_start(bytes: &[u8], pos: Option<&csv::Position>) -> usize {
    let mut at = pos.map_or(0, |p| p.byte() as usize);
    while at < bytes.len() && matches!(bytes[at], b'\r' | b'\n') {
        at += 1;
    }
    at
}

/// A CSV error as `line N: what`.
fn csv_error(e: &csv::Error, lines: &Lines, bytes: &[u8]) -> String {
    let line = |pos: &Option<csv::Position>| lines.line_at(record_start(bytes, pos.as_ref()));
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            pos,
            expected_len,
            len,
        } => format!(
            "line {}: the row has {len} fields but the header has {expected_len}",
            line(pos)
        ),
        csv::ErrorKind::Utf8 { pos, err } => format!(
            "line {}: field {} is not valid UTF-8",
            line(pos),
            err.field() + 1
        ),
        csv::ErrorKind::Io(io) => format!("cannot read: {io}"),
        _ => e.to_string(),
    }
}

impl Step for Lookup {
    fn name(&self) -> &'static str {
        "lookup"
    }

    fn fork(&self) -> Result<Box<dyn Step>> {
        Ok(Box::new(Lookup {
            name: self.name.clone(),
            file: self.file.clone(),
            on: self.on.clone(),
            key_column: self.key_column.clone(),
            required: self.required,
            rows: Arc::clone(&self.rows),
        }))
    }

    fn apply(&mut self, ev: &mut Event, _original: &[u8]) -> Result<Flow, Vec<FailureMessage>> {
        let (row, missing_key) = match ev.scalar(&self.on) {
            raw::Scalar::Text(k) => match self.rows.get(&*k) {
                Some(row) => (Some(row), None),
                None => (None, Some(k.into_owned())),
            },
            raw::Scalar::Missing => (None, None),
            raw::Scalar::Compound(kind) => {
                return Err(vec![FailureMessage::new(
                    error_kind::WRONG_TYPE,
                    format!(
                        "the lookup key at {} is a JSON {kind}, not a string or number",
                        self.on
                    ),
                )
                .with("path", self.on.to_string())
                .with("table", self.name.as_str())])
            }
        };
        match row {
            Some(row) => ev.derive(Derived {
                field: &self.name,
                schema: schema::LOOKUP,
                data: &row.data,
                value: &row.data[row.row_start..row.data.len() - 1],
            }),
            None if self.required => {
                let message = match &missing_key {
                    Some(k) => format!(
                        "no row of {} has {} = {k:?} (the value at {})",
                        self.file, self.key_column, self.on
                    ),
                    None => format!(
                        "the event has no lookup key at {} for {}",
                        self.on, self.file
                    ),
                };
                return Err(vec![FailureMessage::new(
                    error_kind::LOOKUP_MISSING,
                    message,
                )
                .with("path", self.on.to_string())
                .with("table", self.name.as_str())
                .with("key", missing_key.map(Value::String).unwrap_or(Value::Null))]);
            }
            None => ev.derive_nothing(&self.name),
        }
        .map_err(|e| vec![e])?;
        Ok(Flow::Continue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enrich::testing::run;
    use serde_json::json;

    fn table(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn spec(table: PathBuf, key: Option<&str>, required: bool) -> LookupSpec {
        LookupSpec {
            table,
            on: FieldPath::parse(".data.sku").unwrap(),
            key: key.map(String::from),
            required,
            name: None,
        }
    }

    const CSV: &str = "sku,name,price\nA-1,\"iPad, 64 GB\",499\nB-2,\"The \"\"best\"\" pen\",3\n";

    #[test]
    fn csv_rows_with_quoted_fields() {
        let dir = tempfile::tempdir().unwrap();
        let t = table(&dir, "products.csv", CSV);
        let l = Lookup::load(&spec(t, None, false)).unwrap();
        assert_eq!(l.len(), 2);
        let out = run(Box::new(l), None, r#"{"schema":"s","data":{"sku":"A-1"}}"#)
            .unwrap()
            .unwrap();
        assert_eq!(
            out["derived_contexts"][0],
            json!({"schema": schema::LOOKUP, "data": {"table": "products", "key": "A-1", "row": {"sku": "A-1", "name": "iPad, 64 GB", "price": "499"}}})
        );
        let t = table(&dir, "products.csv", CSV);
        let l = Lookup::load(&spec(t, Some("name"), false)).unwrap();
        let out = run(
            Box::new(l),
            Some(".data.x"),
            r#"{"data":{"sku":"The \"best\" pen"}}"#,
        )
        .unwrap()
        .unwrap();
        assert_eq!(out["data"]["x"]["products"]["price"], "3");
    }

    #[test]
    fn missing_keys_give_null_or_fail_when_required() {
        let dir = tempfile::tempdir().unwrap();
        let t = table(&dir, "products.csv", CSV);
        let l = Lookup::load(&spec(t.clone(), None, false)).unwrap();
        let out = run(Box::new(l), None, r#"{"data":{"sku":"nope"}}"#)
            .unwrap()
            .unwrap();
        assert_eq!(out, json!({"data": {"sku": "nope"}}));
        let l = Lookup::load(&spec(t.clone(), None, false)).unwrap();
        let out = run(Box::new(l), Some(".data"), r#"{"data":{}}"#)
            .unwrap()
            .unwrap();
        assert_eq!(out, json!({"data": {"products": null}}));
        let l = Lookup::load(&spec(t.clone(), None, true)).unwrap();
        let err = run(Box::new(l), None, r#"{"data":{"sku":"nope"}}"#).unwrap_err();
        assert_eq!(err.len(), 1);
        assert_eq!(err[0].kind, error_kind::LOOKUP_MISSING);
        assert_eq!(err[0].detail["key"], "nope");
        assert!(
            err[0].message.contains("products.csv"),
            "{}",
            err[0].message
        );
        let l = Lookup::load(&spec(t, None, true)).unwrap();
        let err = run(Box::new(l), None, r#"{"data":{"sku":{"a":1}}}"#).unwrap_err();
        assert_eq!(err[0].kind, error_kind::WRONG_TYPE);
    }

    #[test]
    fn numbers_match_their_text() {
        let dir = tempfile::tempdir().unwrap();
        let t = table(&dir, "ids.csv", "id,v\n42,x\n");
        let l = Lookup::load(&spec(t, None, true)).unwrap();
        let out = run(Box::new(l), Some(".r"), r#"{"data":{"sku":42}}"#)
            .unwrap()
            .unwrap();
        assert_eq!(out["r"]["ids"], json!({"id": "42", "v": "x"}));
    }

    #[test]
    fn ndjson_tables_keep_values() {
        let dir = tempfile::tempdir().unwrap();
        let t = table(
            &dir,
            "stores.ndjson",
            "{\"id\":7,\"open\":true,\"tags\":[\"a\"]}\n\n{\"id\":\"8\",\"open\":false}\n",
        );
        let l = Lookup::load(&spec(t, Some("id"), false)).unwrap();
        let out = run(Box::new(l), Some(".e"), r#"{"data":{"sku":7}}"#)
            .unwrap()
            .unwrap();
        assert_eq!(
            out["e"]["stores"],
            json!({"id": 7, "open": true, "tags": ["a"]})
        );
    }

    fn load_err(name: &str, text: &str, key: Option<&str>) -> String {
        let dir = tempfile::tempdir().unwrap();
        let t = table(&dir, name, text);
        format!(
            "{:#}",
            Lookup::load(&spec(t, key, false))
                .err()
                .expect("should fail")
        )
    }

    #[test]
    fn bad_tables_name_file_and_line() {
        let e = load_err("p.csv", "sku,name\nA,x\nB,y\nA,z\n", None);
        assert!(
            e.contains("p.csv line 4: duplicate key \"A\"") && e.contains("first on line 2"),
            "{e}"
        );
        let e = load_err("p.csv", "sku,name\nA,x\nB,y,extra\n", None);
        assert!(
            e.contains("p.csv: line 3: the row has 3 fields but the header has 2"),
            "{e}"
        );
        let e = load_err("p.csv", "sku,name\n", Some("nope"));
        assert!(e.contains("p.csv line 1: no column \"nope\""), "{e}");
        let e = load_err("p.ndjson", "{\"id\":1}\n{\"id\":2\n", Some("id"));
        assert!(e.contains("p.ndjson line 2: not valid JSON"), "{e}");
        let e = load_err("p.ndjson", "{\"id\":1}\n{\"id\":1}\n", Some("id"));
        assert!(e.contains("p.ndjson line 2: duplicate key \"1\""), "{e}");
        let e = load_err("p.ndjson", "{\"x\":1}\n", Some("id"));
        assert!(
            e.contains("p.ndjson line 1: the row has no key member"),
            "{e}"
        );
        let e = load_err("p.ndjson", "[1]\n", Some("id"));
        assert!(e.contains("line 1: each row must be a JSON object"), "{e}");
        let e = load_err("p.ndjson", "{}\n", None);
        assert!(e.contains("needs --key"), "{e}");
    }
}
