//! `dr-drill lint`: DR-readiness checks from the OpenShift Virtualization DR guidance, over manifests (a
//! GitOps tree, multi-document YAML, kustomize output on stdin) or a live cluster. The rules are pure
//! functions over parsed objects; reading files and clusters is at the edges.

pub mod live;
pub mod output;
pub mod rules;

use serde::Serialize;
use serde_json::Value;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum LintError {
    #[error("failed to read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}:{line}: {msg}")]
    Parse { path: PathBuf, line: usize, msg: String },
    #[error("context {context}: {msg}")]
    Live { context: String, msg: String },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// Where an object came from: a file and the line its document starts on, or a live cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Source {
    pub file: String,
    pub line: usize,
}

/// One Kubernetes object as the rules see it.
#[derive(Clone, Debug)]
pub struct Object {
    pub kind: String,
    pub name: String,
    pub namespace: String,
    pub value: Value,
    pub source: Source,
    /// The object's own text (for finding the line of a field), when it came from a file.
    pub text: Option<String>,
}

impl Object {
    pub fn from_value(value: Value, source: Source, text: Option<String>) -> Option<Object> {
        let kind = value.get("kind")?.as_str()?.to_string();
        let meta = value.get("metadata");
        let name = meta.and_then(|m| m.get("name")).and_then(Value::as_str).unwrap_or("").to_string();
        let namespace = meta.and_then(|m| m.get("namespace")).and_then(Value::as_str).unwrap_or("").to_string();
        Some(Object { kind, name, namespace, value, source, text })
    }
    pub fn label(&self, key: &str) -> Option<&str> {
        self.value.pointer("/metadata/labels").and_then(|l| l.get(key)).and_then(Value::as_str)
    }
    pub fn annotations(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.value.pointer("/metadata/annotations").and_then(Value::as_object).into_iter().flatten()
    }
    pub fn id(&self) -> String {
        if self.namespace.is_empty() {
            format!("{} {}", self.kind, self.name)
        } else {
            format!("{} {}/{}", self.kind, self.namespace, self.name)
        }
    }
    /// Line of the first occurrence of `key:` within this object's text, else the object's first line.
    pub fn line_of(&self, key: &str) -> usize {
        let pat = format!("{key}:");
        self.text
            .as_deref()
            .and_then(|t| t.lines().position(|l| l.trim_start().trim_start_matches("- ").starts_with(&pat)))
            .map(|i| self.source.line + i)
            .unwrap_or(self.source.line)
    }
}

/// A rule's finding.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Finding {
    pub rule: &'static str,
    pub name: &'static str,
    pub severity: Severity,
    pub object: String,
    pub file: String,
    pub line: usize,
    pub message: String,
    pub fix: String,
}

/// Splits a multi-document YAML stream and parses each document, keeping each one's first line. Pure.
pub fn parse_stream(file: &str, text: &str) -> Result<Vec<Object>, LintError> {
    let mut docs: Vec<(usize, String)> = vec![];
    let mut cur = String::new();
    let mut start = 1;
    for (i, line) in text.lines().enumerate() {
        if line.starts_with("---") && line[3..].trim().is_empty() {
            docs.push((start, std::mem::take(&mut cur)));
            start = i + 2;
        } else {
            cur.push_str(line);
            cur.push('\n');
        }
    }
    docs.push((start, cur));
    let mut out = vec![];
    for (first, doc) in docs {
        // skip leading blank and comment lines so the object's line is its first key
        let skip = doc.lines().take_while(|l| l.trim().is_empty() || l.trim_start().starts_with('#')).count();
        if skip == doc.lines().count() {
            continue;
        }
        let value: Value = serde_saphyr::from_str(&doc).map_err(|e| {
            let (line, msg) = crate::text::yaml_error(&e);
            LintError::Parse { path: file.into(), line: first + line as usize - 1, msg }
        })?;
        let src = Source { file: file.to_string(), line: first + skip };
        let body: String = doc.lines().skip(skip).collect::<Vec<_>>().join("\n");
        match value {
            Value::Object(_) => {
                if value.get("kind").and_then(Value::as_str) == Some("List") {
                    for item in value.get("items").and_then(Value::as_array).into_iter().flatten() {
                        out.extend(Object::from_value(item.clone(), src.clone(), None));
                    }
                } else if let Some(o) = Object::from_value(value, src, Some(body)) {
                    out.push(o);
                }
            }
            Value::Null => {}
            _ => return Err(LintError::Parse { path: file.into(), line: first + skip, msg: "a Kubernetes manifest must be a mapping".into() }),
        }
    }
    Ok(out)
}

/// Reads manifests: files as given, directories walked for `.yaml`/`.yml`/`.json`, `-` for stdin.
pub fn load_paths(paths: &[PathBuf]) -> Result<(Vec<Object>, bool), LintError> {
    let mut files = vec![];
    let mut has_kustomization = false;
    fn walk(p: &Path, files: &mut Vec<PathBuf>, k: &mut bool) -> std::io::Result<()> {
        if p.is_dir() {
            let mut es: Vec<PathBuf> = std::fs::read_dir(p)?.flatten().map(|e| e.path()).collect();
            es.sort();
            for e in es {
                if e.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')) {
                    continue;
                }
                walk(&e, files, k)?;
            }
        } else if p.extension().is_some_and(|x| x == "yaml" || x == "yml" || x == "json") {
            if p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("kustomization.")) {
                *k = true;
            }
            files.push(p.to_path_buf());
        }
        Ok(())
    }
    let mut objects = vec![];
    for p in paths {
        if p.as_os_str() == "-" {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).map_err(|source| LintError::Read { path: p.clone(), source })?;
            objects.extend(parse_stream("<stdin>", &text)?);
            continue;
        }
        if !p.exists() {
            return Err(LintError::Read { path: p.clone(), source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or directory") });
        }
        walk(p, &mut files, &mut has_kustomization).map_err(|source| LintError::Read { path: p.clone(), source })?;
    }
    for f in files {
        let text = std::fs::read_to_string(&f).map_err(|source| LintError::Read { path: f.clone(), source })?;
        objects.extend(parse_stream(&f.display().to_string(), &text)?);
    }
    Ok((objects, has_kustomization))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_document_lines() {
        let text = "# header\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\n\n---\n# c\napiVersion: v1\nkind: Secret\nmetadata:\n  name: b\n  namespace: ns\n";
        let objs = parse_stream("f.yaml", text).unwrap();
        assert_eq!(objs.len(), 2);
        assert_eq!((objs[0].kind.as_str(), objs[0].source.line), ("ConfigMap", 2));
        assert_eq!((objs[1].id(), objs[1].source.line), ("Secret ns/b".to_string(), 10));
        assert_eq!(objs[1].line_of("namespace"), 14);
    }

    #[test]
    fn parse_error_names_the_line() {
        let e = parse_stream("f.yaml", "kind: A\n---\nkind: [x\n").unwrap_err().to_string();
        assert!(e.starts_with("f.yaml:3:") || e.starts_with("f.yaml:4:"), "{e}");
    }
}
