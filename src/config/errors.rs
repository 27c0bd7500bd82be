//! Configuration errors as an operator fixes them (after `vector validate`): every error of
//! the file in one run, each with its key once, its line and column, a human type name, a hint
//! for durations and "did you mean" for an unknown key.
//!
//! serde stops at the first error; to find the next, the offending line (and the lines nested
//! under it) is blanked and the file read again — line numbers stay those of the file.

use serde::de::DeserializeOwned;

/// At most this many errors are reported for one file.
const MAX_PROBLEMS: usize = 20;

/// One error: the key it is about (dotted path), where, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.line, self.column) {
            (Some(l), Some(c)) => {
                write!(f, "{} (line {l}, column {c}): {}", self.key, self.message)
            }
            _ => write!(f, "{}: {}", self.key, self.message),
        }
    }
}

/// Reads `text` as a `T`, collecting every error (up to [`MAX_PROBLEMS`]); the value is what
/// could be read with the offending lines left out.
pub fn deserialize_all<T: DeserializeOwned>(text: &str) -> (Option<T>, Vec<Problem>) {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut problems: Vec<Problem> = Vec::new();
    loop {
        let current = lines.join("\n");
        let de = serde_yaml_ng::Deserializer::from_str(&current);
        let err = match serde_path_to_error::deserialize::<_, T>(de) {
            Ok(v) => return (Some(v), problems),
            Err(e) => e,
        };
        let path = err.path().to_string();
        let inner = err.into_inner();
        let location = inner.location();
        let problem = describe(&path, &inner.to_string(), location.as_ref());
        let line = problem.line;
        let repeated = problems.iter().any(|p| p.line == line && line.is_some());
        if !repeated {
            problems.push(problem);
        }
        match line {
            Some(l) if !repeated && l >= 1 && l <= lines.len() && problems.len() < MAX_PROBLEMS => {
                blank(&mut lines, l - 1)
            }
            _ => return (None, problems),
        }
    }
}

/// Blanks line `i` and the lines nested under it (indented deeper), so the rest still parses.
fn blank(lines: &mut [String], i: usize) {
    let indent = |s: &str| s.len() - s.trim_start().len();
    let own = indent(&lines[i]);
    lines[i].clear();
    for l in lines.iter_mut().skip(i + 1) {
        if l.trim().is_empty() || l.trim_start().starts_with('#') {
            continue;
        }
        if indent(l) <= own {
            break;
        }
        l.clear();
    }
}

/// An error of serde's, said for an operator.
fn describe(path: &str, raw: &str, location: Option<&serde_yaml_ng::Location>) -> Problem {
    let key = match path {
        "." | "" => "(top level)".to_string(),
        p => p.to_string(),
    };
    // serde_yaml_ng's text ends with the location and may start with (part of) the path.
    let mut message = match raw.rfind(" at line ") {
        Some(i) => raw[..i].to_string(),
        None => raw.to_string(),
    };
    if let Some((head, rest)) = message.split_once(": ") {
        if !head.contains(' ') && (key.starts_with(head) || head == ".") {
            message = rest.to_string();
        }
    }
    let message = humanize(&key, &message);
    Problem {
        key,
        line: location.map(|l| l.line()),
        column: location.map(|l| l.column()),
        message,
    }
}

fn humanize(key: &str, message: &str) -> String {
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let (unknown, tail) = rest.split_once('`').unwrap_or((rest, ""));
        let valid: Vec<&str> = tail.split('`').skip(1).step_by(2).collect();
        let best = valid
            .iter()
            .map(|v| (strsim::jaro_winkler(unknown, v), *v))
            .filter(|(score, _)| *score >= 0.8)
            .max_by(|a, b| a.0.total_cmp(&b.0));
        return match best {
            Some((_, v)) => format!("unknown key `{unknown}`: did you mean `{v}`?"),
            None if valid.is_empty() => format!("unknown key `{unknown}`"),
            None => format!("unknown key `{unknown}`; valid here: {}", valid.join(", ")),
        };
    }
    let mut m = message.to_string();
    for (rust, human) in [
        ("expected i32", "expected a whole number"),
        ("expected i64", "expected a whole number"),
        ("expected u16", "expected a whole number"),
        ("expected u32", "expected a whole number"),
        ("expected u64", "expected a whole number"),
        ("expected usize", "expected a whole number"),
        ("expected f64", "expected a number"),
        ("expected a boolean", "expected true or false"),
        ("invalid type: string ", "got the text "),
        ("invalid value: string ", "got the text "),
        ("invalid type: integer ", "got the number "),
        ("invalid type: floating point ", "got the number "),
    ] {
        m = m.replace(rust, human);
    }
    if m.contains("expected a duration") {
        let bare_number = m
            .split('"')
            .nth(1)
            .is_some_and(|v| !v.is_empty() && v.chars().all(|c| c.is_ascii_digit() || c == '.'));
        if bare_number || m.contains("got the number") {
            m.push_str(" — a duration needs a unit: 10s, 500ms, 1m");
        } else {
            m.push_str(" (such as 10s, 500ms, 1m)");
        }
    }
    let _ = key;
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, Default)]
    #[serde(deny_unknown_fields, default)]
    struct Inner {
        group_id: String,
        partitions: i32,
        #[serde(with = "humantime_serde")]
        wait: std::time::Duration,
    }

    #[derive(Debug, serde::Deserialize, Default)]
    #[serde(deny_unknown_fields, default)]
    struct Outer {
        kafka: Inner,
    }

    #[test]
    fn every_error_of_the_file_at_once() {
        let text = "kafka:\n  partitions: four\n  wait: 10\n  grup_id: x\n";
        let (_, problems) = deserialize_all::<Outer>(text);
        let shown: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(shown.len(), 3, "{shown:#?}");
        assert_eq!(problems[0].key, "kafka.partitions");
        assert_eq!(problems[0].line, Some(2));
        assert!(problems[0].message.contains("whole number"), "{shown:#?}");
        assert!(problems[0].message.contains("\"four\""), "{shown:#?}");
        assert_eq!(problems[1].key, "kafka.wait");
        assert!(
            problems[1].message.contains("needs a unit: 10s"),
            "{shown:#?}"
        );
        assert_eq!(problems[2].key, "kafka.grup_id");
        assert!(
            problems[2].message.contains("did you mean `group_id`?"),
            "{shown:#?}"
        );
        assert_eq!((problems[2].line, problems[2].column), (Some(4), Some(3)));
        for p in &problems {
            assert_eq!(p.to_string().matches(&p.key).count(), 1, "key once: {p}");
        }
    }
}
