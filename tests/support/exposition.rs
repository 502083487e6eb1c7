//! A strict reader of the Prometheus text format, for tests that parse renders back: any line that is not
//! a well-formed comment or sample fails the test.

use std::collections::BTreeMap;

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
    /// OpenMetrics' exemplar after the value (`# {labels} value [timestamp]`), on `_bucket` lines only.
    pub exemplar: Option<Exemplar>,
}

/// An exemplar of a sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Exemplar {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
    pub timestamp: Option<f64>,
}

/// A parsed exposition: its families (name -> type) and samples, in order.
#[derive(Debug, Default)]
pub struct Exposition {
    pub families: BTreeMap<String, String>,
    pub samples: Vec<Sample>,
}

impl Exposition {
    /// Samples of metric `name` (exact sample name, e.g. `x_total` or `x_bucket`).
    pub fn named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |s| s.name == name)
    }

    /// The value of the one sample of `name` whose labels include all of `labels`.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let mut matches = self.named(name).filter(|s| {
            labels
                .iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        });
        let first = matches.next()?;
        assert!(
            matches.next().is_none(),
            "more than one {name} sample matches {labels:?}"
        );
        Some(first.value)
    }
}

/// Parses `text`, panicking at the first malformed line; every sample must belong to a declared family.
pub fn parse(text: &str) -> Exposition {
    let mut exposition = Exposition::default();
    for (number, line) in text.lines().enumerate() {
        let fail = |why: &str| -> ! { panic!("line {}: {why}: {line:?}", number + 1) };
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or_else(|| fail("TYPE without a type"));
            if exposition.families.insert(name.to_owned(), kind.to_owned()).is_some() {
                fail("family declared twice");
            }
            continue;
        }
        if line.starts_with("# HELP ") || line == "# EOF" {
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            fail("unexpected comment or blank line");
        }
        let sample = parse_sample(line).unwrap_or_else(|why| fail(&why));
        let family = ["_total", "_bucket", "_sum", "_count", ""]
            .iter()
            .filter_map(|suffix| sample.name.strip_suffix(suffix))
            .find(|base| {
                exposition.families.contains_key(*base) || exposition.families.contains_key(&format!("{base}_total"))
            });
        if family.is_none() {
            fail("sample of an undeclared family");
        }
        if sample.exemplar.is_some() && !sample.name.ends_with("_bucket") {
            fail("an exemplar on a line that is not a histogram bucket");
        }
        exposition.samples.push(sample);
    }
    exposition
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line.find(['{', ' ']).ok_or("no value")?;
    let name = &line[..name_end];
    let valid_name = name
        .chars()
        .enumerate()
        .all(|(i, c)| c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit()));
    if name.is_empty() || !valid_name {
        return Err(format!("bad metric name {name:?}"));
    }
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if rest.starts_with('{') {
        rest = parse_labels(rest, &mut labels)?;
    }
    let rest = rest.strip_prefix(' ').ok_or("no space before the value")?;
    let (value, exemplar) = match rest.split_once(" # ") {
        Some((value, exemplar)) => (value, Some(parse_exemplar(exemplar)?)),
        None => (rest, None),
    };
    Ok(Sample {
        name: name.to_owned(),
        labels,
        value: parse_value(value)?,
        exemplar,
    })
}

/// Reads `{name="value",...}` into `labels`; returns the text after the `}`.
fn parse_labels<'a>(text: &'a str, labels: &mut BTreeMap<String, String>) -> Result<&'a str, String> {
    let mut rest = text.strip_prefix('{').ok_or("no {")?;
    loop {
        if let Some(after) = rest.strip_prefix('}') {
            return Ok(after);
        }
        let eq = rest.find("=\"").ok_or("label without =\"")?;
        let label = &rest[..eq];
        if label.is_empty() || !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("bad label name {label:?}"));
        }
        let (value, after) = unescape(&rest[eq + 2..])?;
        if labels.insert(label.to_owned(), value).is_some() {
            return Err(format!("label {label} twice"));
        }
        rest = after.strip_prefix(',').unwrap_or(after);
    }
}

fn parse_value(value: &str) -> Result<f64, String> {
    Ok(match value {
        "NaN" => f64::NAN,
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        number => number.parse().map_err(|_| format!("bad value {number:?}"))?,
    })
}

/// Reads an exemplar, `{labels} value [timestamp]`, checking OpenMetrics' 128-character limit.
fn parse_exemplar(text: &str) -> Result<Exemplar, String> {
    let mut labels = BTreeMap::new();
    let rest = parse_labels(text, &mut labels)?;
    let chars: usize = labels.iter().map(|(n, v)| n.chars().count() + v.chars().count()).sum();
    if chars > 128 {
        return Err(format!("exemplar labels of {chars} characters"));
    }
    let rest = rest.strip_prefix(' ').ok_or("no space before the exemplar's value")?;
    let (value, timestamp) = match rest.split_once(' ') {
        Some((value, timestamp)) => (value, Some(timestamp)),
        None => (rest, None),
    };
    let timestamp = match timestamp {
        Some(t) => Some(t.parse().map_err(|_| format!("bad exemplar timestamp {t:?}"))?),
        None => None,
    };
    Ok(Exemplar {
        labels,
        value: parse_value(value)?,
        timestamp,
    })
}

/// Reads a label value up to its closing quote; returns it unescaped and the text after the quote.
fn unescape(text: &str) -> Result<(String, &str), String> {
    let mut value = String::new();
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((value, &text[i + 1..])),
            '\\' => match chars.next() {
                Some((_, '\\')) => value.push('\\'),
                Some((_, '"')) => value.push('"'),
                Some((_, 'n')) => value.push('\n'),
                other => return Err(format!("bad escape {other:?}")),
            },
            '\n' => return Err("raw line feed in a label value".to_owned()),
            c => value.push(c),
        }
    }
    Err("unterminated label value".to_owned())
}
