//! The dotted-key editor: `a.b.c=value` overrides on a config's YAML, as `--set` and a
//! sweep's grid write them.

use serde_yaml_ng::{Mapping, Value};

use super::ConfigError;

/// Applies one `a.b.c=value` override, creating missing sections; `null` removes a key.
pub fn set(root: &mut Value, assignment: &str) -> Result<(), ConfigError> {
    let bad = |message: String| ConfigError::Invalid {
        file: "--set".into(),
        key: assignment.split('=').next().unwrap_or_default().to_string(),
        message,
    };
    let (key, raw) = assignment
        .split_once('=')
        .ok_or_else(|| bad("expected key.path=value".into()))?;
    let parsed: Value = serde_yaml_ng::from_str(raw).map_err(|e| bad(e.to_string()))?;
    set_value(root, key, parsed).map_err(bad)
}

/// Where an error at `key` comes from: the last `--set` that wrote the key or a section
/// holding it, or that removed the field the message names (`run: missing field
/// `epochs``); else the file.
pub(super) fn blame(file: &str, overrides: &[String], key: &str, message: &str) -> String {
    let within = |a: &str, b: &str| {
        a == b || a.starts_with(&format!("{b}.")) || a.starts_with(&format!("{b}["))
    };
    let related = |o: &&String| {
        let set = o.split('=').next().unwrap_or_default();
        let leaf = set.rsplit('.').next().unwrap_or(set);
        within(key, set) || (within(set, key) && message.contains(&format!("`{leaf}`")))
    };
    match overrides.iter().rev().find(related) {
        Some(o) => format!("--set {o}"),
        None => file.into(),
    }
}

/// Sets dotted `key` of `root` to `value`, creating missing sections; `null` removes it.
pub fn set_value(root: &mut Value, key: &str, value: Value) -> Result<(), String> {
    let parts: Vec<&str> = key.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err("empty key segment".into());
    }
    let mut node = root;
    for part in &parts[..parts.len() - 1] {
        if !node.is_mapping() {
            *node = Value::Mapping(Mapping::new());
        }
        let map = node.as_mapping_mut().expect("just made a mapping");
        node = map
            .entry(Value::String(part.to_string()))
            .or_insert(Value::Mapping(Mapping::new()));
    }
    if !node.is_mapping() {
        *node = Value::Mapping(Mapping::new());
    }
    let map = node.as_mapping_mut().expect("just made a mapping");
    let last = Value::String(parts[parts.len() - 1].to_string());
    if value.is_null() {
        map.remove(&last);
    } else {
        map.insert(last, value);
    }
    Ok(())
}
