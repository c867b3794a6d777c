//! Reading a mapping file the way statsd_exporter 0.30 reads it: non-strictly.
//!
//! statsd_exporter decodes the file with go-yaml v2's non-strict `Unmarshal`: unknown keys are ignored,
//! a key given twice keeps its last value, `<<` merge keys and anchors work, and a plain scalar fills a
//! string field whatever it looks like (`status: 200`). Files written for it must load here too, so this
//! module turns the YAML into a [`serde_yaml::Value`] that the strict raw structs of [`crate::config`]
//! accept, and reports what it set aside as [`Issue`]s (the caller turns them into positioned warnings,
//! or errors under `--statsd.mapping-strict`):
//! - a key the schema does not know (at the top, in `defaults`, in a rule, in `summary_options`,
//!   `histogram_options` or a quantile) is dropped: [`IssueKind::UnknownKey`];
//! - a key given twice in one mapping keeps its last value: [`IssueKind::DuplicateKey`];
//! - `<<: *anchor` (or a list of anchors) merges the anchored mappings' keys that are not set already.
//!
//! Scalars are typed by where they stand: in a field that takes text (`match`, `name`, label values,
//! `help`, …) a plain scalar is its text (`null`/`~`/empty stay null), elsewhere it is resolved as YAML
//! (numbers, booleans — including YAML 1.1's `yes`/`no`/`on`/`off` for the two boolean fields, as
//! go-yaml v2 reads them). Only the first document of a multi-document file is read, as go-yaml does.

use std::collections::HashMap;
use std::rc::Rc;

use serde_yaml::{Mapping, Value};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, ScanError, TScalarStyle};

use crate::positions::Position;

/// What was set aside while reading the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IssueKind {
    /// A key the schema does not know; dropped.
    UnknownKey,
    /// A key given again in the same mapping; the last value is used.
    DuplicateKey,
}

/// One thing set aside, with the dotted path of its key (`mappings.2.lables`) and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Issue {
    pub(crate) kind: IssueKind,
    pub(crate) path: String,
    pub(crate) position: Position,
}

/// Where a mapping stands in the schema: which keys it may hold and what their values are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Context {
    Root,
    Defaults,
    Rule,
    Summary,
    Histogram,
    Quantile,
    /// `labels`: any key, every value is text.
    Labels,
    /// Inside an unknown key, or a value of the wrong shape: nothing is checked (serde reports shapes).
    Free,
}

/// What a key's value is, for typing scalars and checking nested mappings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// Text: a plain scalar is taken as written.
    Text,
    /// A boolean: YAML 1.1 words accepted.
    Bool,
    /// Anything else: scalars resolved as YAML.
    Resolved,
    /// A mapping of this context.
    Map(Context),
    /// A sequence whose items are mappings of this context.
    SeqOf(Context),
}

impl Context {
    /// The slot of `key` here, or `None` if the key is unknown.
    fn slot(self, key: &str) -> Option<Slot> {
        use Slot::*;
        let slot = match (self, key) {
            (Context::Root, "defaults") => Map(Context::Defaults),
            (Context::Root, "mappings") => SeqOf(Context::Rule),
            (Context::Defaults | Context::Rule, "observer_type" | "timer_type" | "match_type") => {
                Text
            }
            (Context::Defaults | Context::Rule, "ttl") => Resolved,
            (Context::Defaults | Context::Rule, "buckets") => Resolved,
            (Context::Defaults | Context::Rule, "quantiles") => SeqOf(Context::Quantile),
            (Context::Defaults | Context::Rule, "summary_options") => Map(Context::Summary),
            (Context::Defaults | Context::Rule, "histogram_options") => Map(Context::Histogram),
            (Context::Defaults, "glob_disable_ordering") => Bool,
            (Context::Rule, "match" | "name" | "help" | "action" | "match_metric_type") => Text,
            (Context::Rule, "labels") => Map(Context::Labels),
            (Context::Rule, "honor_labels") => Bool,
            (Context::Rule, "scale") => Resolved,
            (Context::Summary, "quantiles") => SeqOf(Context::Quantile),
            (Context::Summary, "max_age" | "age_buckets" | "buf_cap") => Resolved,
            (
                Context::Histogram,
                "buckets" | "native_histogram_bucket_factor" | "native_histogram_max_buckets",
            ) => Resolved,
            (Context::Quantile, "quantile" | "error") => Resolved,
            (Context::Labels, _) => Text,
            (Context::Free, _) => Resolved,
            _ => return None,
        };
        Some(slot)
    }

    fn checks_keys(self) -> bool {
        !matches!(self, Context::Labels | Context::Free)
    }

    /// A value as go-yaml leaves it in a field of this context: a label given no value (`team:`,
    /// `team: ~`) is the empty text, go-yaml's zero value for a string.
    fn filled(self, value: Value) -> Value {
        match (self, value) {
            (Context::Labels, Value::Null) => Value::String(String::new()),
            (_, value) => value,
        }
    }
}

/// A parsed YAML node. Children are shared, and an alias is the anchored node itself (not a copy), so
/// the tree stays as small as the text however aliases nest; [`convert`] expands them, under go-yaml's
/// limit on aliasing.
#[derive(Debug)]
enum Node {
    Scalar {
        text: String,
        plain: bool,
        /// `!!str` and friends: the suffix (`str`), if tagged.
        tag: Option<String>,
    },
    Seq(Vec<Rc<Node>>),
    /// Entries in file order: (key node, key position, value).
    Map(Vec<(Rc<Node>, Position, Rc<Node>)>),
    /// `*anchor`: the anchored node.
    Alias(Rc<Node>),
}

impl Node {
    /// The node an alias stands for (itself if not an alias).
    fn resolved(&self) -> &Node {
        let mut node = self;
        while let Node::Alias(inner) = node {
            node = inner;
        }
        node
    }
}

/// go-yaml v2's defence against alias bombs ("billion laughs"), as statsd_exporter runs it: nodes
/// decoded, and how many of them through an alias; past 100 aliased of 1 000 decoded, the aliased share
/// may not exceed a ratio that falls from 0.99 (up to 400 000 decoded) to 0.10 (from 4 000 000).
#[derive(Default)]
struct Aliasing {
    decoded: u64,
    aliased: u64,
    /// Aliases being expanded around the current node.
    depth: u32,
}

/// go-yaml's message.
const EXCESSIVE_ALIASING: &str = "document contains excessive aliasing";

impl Aliasing {
    fn count(&mut self) -> Result<(), ()> {
        self.decoded += 1;
        if self.depth > 0 {
            self.aliased += 1;
        }
        let allowed = match self.decoded {
            ..=400_000 => 0.99,
            4_000_000.. => 0.10,
            d => 0.99 - 0.89 * ((d - 400_000) as f64 / 3_600_000.0),
        };
        if self.aliased > 100
            && self.decoded > 1000
            && self.aliased as f64 / self.decoded as f64 > allowed
        {
            return Err(());
        }
        Ok(())
    }
}

/// A YAML syntax error: where, and what.
#[derive(Debug)]
pub(crate) struct SyntaxError {
    pub(crate) position: Position,
    pub(crate) message: String,
}

/// Reads `text` (its first document) into a [`Value`] for the raw structs, with what was set aside.
pub(crate) fn read(text: &str) -> Result<(Value, Vec<Issue>), SyntaxError> {
    let mut builder = Builder::default();
    Parser::new_from_str(text)
        .load(&mut builder, false)
        .map_err(|e: ScanError| SyntaxError {
            position: Position {
                line: e.marker().line(),
                column: e.marker().col() + 1,
            },
            message: e.info().to_string(),
        })?;
    let mut issues = Vec::new();
    let mut aliasing = Aliasing::default();
    let value = match builder.root {
        Some(root) => convert(
            &root,
            Slot::Map(Context::Root),
            "",
            &mut issues,
            &mut aliasing,
        )
        .map_err(|at| SyntaxError {
            position: at.unwrap_or(Position { line: 1, column: 1 }),
            message: EXCESSIVE_ALIASING.into(),
        })?,
        None => Value::Null,
    };
    Ok((value, issues))
}

/// Why [`convert`] stopped: too much aliasing, under the key at this position (if any).
type Excessive = Option<Position>;

fn convert(
    node: &Node,
    slot: Slot,
    path: &str,
    issues: &mut Vec<Issue>,
    aliasing: &mut Aliasing,
) -> Result<Value, Excessive> {
    if let Node::Alias(inner) = node {
        aliasing.depth += 1;
        let value = convert(inner, slot, path, issues, aliasing);
        aliasing.depth -= 1;
        return value;
    }
    aliasing.count().map_err(|()| None)?;
    Ok(match node {
        Node::Alias(_) => unreachable!("expanded above"),
        Node::Scalar { text, plain, tag } => scalar(text, *plain, tag.as_deref(), slot),
        Node::Seq(items) => {
            let item_slot = match slot {
                Slot::SeqOf(c) => Slot::Map(c),
                _ => Slot::Resolved,
            };
            Value::Sequence(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| {
                        convert(
                            item,
                            item_slot,
                            &join(path, &i.to_string()),
                            issues,
                            aliasing,
                        )
                    })
                    .collect::<Result<_, _>>()?,
            )
        }
        Node::Map(entries) => {
            let context = match slot {
                Slot::Map(c) => c,
                _ => Context::Free,
            };
            let mut out = Mapping::new();
            let mut seen: HashMap<String, Position> = HashMap::new();
            for (key, at, value) in entries {
                let Node::Scalar { text: key, .. } = key.resolved() else {
                    // A sequence or mapping as a key: no field has one; go-yaml ignores it too.
                    continue;
                };
                if key == "<<" {
                    continue;
                }
                let key_path = join(path, key);
                let Some(child) = context.slot(key) else {
                    if context.checks_keys() {
                        issues.push(Issue {
                            kind: IssueKind::UnknownKey,
                            path: key_path,
                            position: *at,
                        });
                    }
                    continue;
                };
                if seen.insert(key.clone(), *at).is_some() {
                    issues.push(Issue {
                        kind: IssueKind::DuplicateKey,
                        path: key_path.clone(),
                        position: *at,
                    });
                }
                // Last value wins, as in go-yaml's non-strict decoding.
                let value = convert(value, child, &key_path, issues, aliasing)
                    .map_err(|e| e.or(Some(*at)))?;
                out.insert(Value::String(key.clone()), context.filled(value));
            }
            // Merge keys: the merged mappings fill in keys not set here, earlier merges first.
            for (key, at, value) in entries {
                if !matches!(key.resolved(), Node::Scalar { text, .. } if text == "<<") {
                    continue;
                }
                let sources: Vec<&Rc<Node>> = match value.resolved() {
                    Node::Seq(items) => items.iter().collect(),
                    _ => vec![value],
                };
                for source in sources {
                    // A merged mapping is almost always an alias: its keys are decoded through it.
                    let through_alias = matches!(**source, Node::Alias(_));
                    let Node::Map(merged) = source.resolved() else {
                        continue;
                    };
                    for (mkey, mat, mvalue) in merged {
                        let Node::Scalar { text: mkey, .. } = mkey.resolved() else {
                            continue;
                        };
                        let key_value = Value::String(mkey.clone());
                        if mkey == "<<" || out.contains_key(&key_value) {
                            continue;
                        }
                        let key_path = join(path, mkey);
                        match context.slot(mkey) {
                            Some(child) => {
                                aliasing.depth += u32::from(through_alias);
                                let value = convert(mvalue, child, &key_path, issues, aliasing);
                                aliasing.depth -= u32::from(through_alias);
                                let value = value.map_err(|e| e.or(Some(*at)))?;
                                out.insert(key_value, context.filled(value));
                            }
                            None if context.checks_keys() => issues.push(Issue {
                                kind: IssueKind::UnknownKey,
                                path: key_path,
                                position: *mat,
                            }),
                            None => {}
                        }
                    }
                }
            }
            Value::Mapping(out)
        }
    })
}

fn join(path: &str, segment: &str) -> String {
    if path.is_empty() {
        segment.to_string()
    } else {
        format!("{path}.{segment}")
    }
}

fn is_null(text: &str) -> bool {
    matches!(text, "" | "~" | "null" | "Null" | "NULL")
}

fn scalar(text: &str, plain: bool, tag: Option<&str>, slot: Slot) -> Value {
    if !plain || tag == Some("str") {
        return Value::String(text.to_string());
    }
    if is_null(text) {
        return Value::Null;
    }
    match slot {
        Slot::Text => Value::String(text.to_string()),
        Slot::Bool => match text {
            "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" | "true" | "True" | "TRUE" => {
                Value::Bool(true)
            }
            "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" | "false" | "False"
            | "FALSE" => Value::Bool(false),
            _ => Value::String(text.to_string()),
        },
        _ => serde_yaml::from_str::<Value>(text).unwrap_or_else(|_| Value::String(text.into())),
    }
}

/// Builds [`Node`]s from the event stream; aliases are expanded from the anchors seen so far.
#[derive(Default)]
struct Builder {
    /// Open containers: the node being filled, its anchor id, and for mappings a pending key.
    stack: Vec<Open>,
    anchors: HashMap<usize, Rc<Node>>,
    root: Option<Rc<Node>>,
    /// Set once the first document is complete; later documents are ignored.
    done: bool,
}

struct Open {
    node: Node,
    anchor: usize,
    pending_key: Option<(Rc<Node>, Position)>,
}

impl Builder {
    fn push_value(&mut self, node: Node, anchor: usize, at: Position) {
        let node = Rc::new(node);
        if anchor != 0 {
            self.anchors.insert(anchor, Rc::clone(&node));
        }
        match self.stack.last_mut() {
            None => {
                if self.root.is_none() {
                    self.root = Some(node);
                }
            }
            Some(open) => match &mut open.node {
                Node::Seq(items) => items.push(node),
                Node::Map(entries) => match open.pending_key.take() {
                    None => open.pending_key = Some((node, at)),
                    Some((key, key_at)) => entries.push((key, key_at, node)),
                },
                Node::Scalar { .. } | Node::Alias(_) => {}
            },
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.done {
            return;
        }
        let at = Position {
            line: mark.line(),
            column: mark.col() + 1,
        };
        match ev {
            Event::DocumentEnd => self.done = self.root.is_some(),
            Event::Scalar(text, style, anchor, tag) => {
                let node = Node::Scalar {
                    text,
                    plain: style == TScalarStyle::Plain,
                    tag: tag.filter(|t| t.handle == "!!").map(|t| t.suffix),
                };
                self.push_value(node, anchor, at);
            }
            Event::Alias(anchor) => {
                let node = match self.anchors.get(&anchor) {
                    Some(anchored) => Node::Alias(Rc::clone(anchored)),
                    None => Node::Scalar {
                        text: String::new(),
                        plain: true,
                        tag: None,
                    },
                };
                self.push_value(node, 0, at);
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                let node = if matches!(ev, Event::SequenceStart(..)) {
                    Node::Seq(Vec::new())
                } else {
                    Node::Map(Vec::new())
                };
                self.stack.push(Open {
                    node,
                    anchor,
                    pending_key: None,
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some(open) = self.stack.pop() {
                    self.push_value(open.node, open.anchor, at);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issues(text: &str) -> Vec<(IssueKind, String, usize, usize)> {
        read(text)
            .expect("valid YAML")
            .1
            .into_iter()
            .map(|i| (i.kind, i.path, i.position.line, i.position.column))
            .collect()
    }

    #[test]
    fn unknown_keys_are_found_at_every_level_and_dropped() {
        let text = "version: 2\ndefaults:\n  observer: summary\n  summary_options:\n    max_agee: 1m\nmappings:\n  - match: a\n    name: b\n    lables: {x: y}\n    histogram_options: {bucket: [1]}\n    quantiles: [{quantile: 0.5, eror: 0.1}]\n";
        assert_eq!(
            issues(text),
            [
                (IssueKind::UnknownKey, "version".into(), 1, 1),
                (IssueKind::UnknownKey, "defaults.observer".into(), 3, 3),
                (
                    IssueKind::UnknownKey,
                    "defaults.summary_options.max_agee".into(),
                    5,
                    5
                ),
                (IssueKind::UnknownKey, "mappings.0.lables".into(), 9, 5),
                (
                    IssueKind::UnknownKey,
                    "mappings.0.histogram_options.bucket".into(),
                    10,
                    25
                ),
                (
                    IssueKind::UnknownKey,
                    "mappings.0.quantiles.0.eror".into(),
                    11,
                    33
                ),
            ]
        );
        let (value, _) = read(text).expect("valid");
        let rule = &value["mappings"][0];
        assert!(rule.get("lables").is_none());
        assert_eq!(rule["name"], Value::String("b".into()));
    }

    #[test]
    fn duplicate_keys_keep_the_last_value() {
        let text = "mappings:\n  - match: a\n    name: first\n    name: second\n    labels: {k: 1, k: 2}\n";
        let (value, issues) = read(text).expect("valid");
        assert_eq!(value["mappings"][0]["name"], Value::String("second".into()));
        assert_eq!(
            value["mappings"][0]["labels"]["k"],
            Value::String("2".into())
        );
        let found: Vec<_> = issues.iter().map(|i| (i.kind, i.path.as_str())).collect();
        assert_eq!(
            found,
            [
                (IssueKind::DuplicateKey, "mappings.0.name"),
                (IssueKind::DuplicateKey, "mappings.0.labels.k"),
            ]
        );
    }

    #[test]
    fn scalars_are_typed_by_their_field() {
        let text = "defaults:\n  glob_disable_ordering: yes\n  ttl: 5\nmappings:\n  - match: 200\n    name: m\n    honor_labels: on\n    labels: {code: 404, flag: true, empty: }\n    scale: 0.001\n";
        let (value, issues) = read(text).expect("valid");
        assert!(issues.is_empty());
        assert_eq!(
            value["defaults"]["glob_disable_ordering"],
            Value::Bool(true)
        );
        assert_eq!(value["defaults"]["ttl"], Value::Number(5.into()));
        let rule = &value["mappings"][0];
        assert_eq!(rule["match"], Value::String("200".into()));
        assert_eq!(rule["honor_labels"], Value::Bool(true));
        assert_eq!(rule["labels"]["code"], Value::String("404".into()));
        assert_eq!(rule["labels"]["flag"], Value::String("true".into()));
        assert_eq!(rule["labels"]["empty"], Value::String(String::new()));
        assert_eq!(
            rule["scale"],
            Value::Number(serde_yaml::Number::from(0.001))
        );
    }

    #[test]
    fn anchors_aliases_and_merge_keys() {
        let text = "x-common: &common\n  observer_type: histogram\n  help: shared\nmappings:\n  - <<: *common\n    match: a\n    name: m\n    help: own\n  - match: b\n    name: n\n    labels: &l {k: v}\n  - match: c\n    name: o\n    labels: *l\n";
        let (value, issues) = read(text).expect("valid");
        // The anchor's home is an unknown top-level key: reported once, not through the merge.
        assert_eq!(issues.len(), 1, "{issues:?}");
        let rules = &value["mappings"];
        assert_eq!(rules[0]["observer_type"], Value::String("histogram".into()));
        assert_eq!(rules[0]["help"], Value::String("own".into()));
        assert_eq!(rules[2]["labels"]["k"], Value::String("v".into()));
    }

    #[test]
    fn only_the_first_document_is_read() {
        let (value, _) = read("mappings: []\n---\nmappings: [{match: a}]\n").expect("valid");
        assert_eq!(value["mappings"], Value::Sequence(vec![]));
    }

    #[test]
    fn syntax_errors_are_positioned() {
        let e = read("mappings:\n  - match: \"unclosed\n").expect_err("bad YAML");
        assert!(e.position.line >= 2, "{e:?}");
        assert!(e.message.contains("quoted scalar"), "{e:?}");
    }

    /// Ten levels of ten aliases each: 10¹⁰ nodes if expanded.
    fn alias_bomb(levels: usize) -> String {
        let mut text = "x0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n".to_string();
        for i in 1..levels {
            let refs = vec![format!("*a{}", i - 1); 10].join(", ");
            text.push_str(&format!("x{i}: &a{i} [{refs}]\n"));
        }
        text
    }

    #[test]
    fn an_alias_bomb_under_unknown_keys_costs_nothing() {
        // go-yaml never decodes unknown keys; neither do we, and aliases are not copied.
        let text = format!("{}mappings: []\n", alias_bomb(10));
        let (value, issues) = read(&text).expect("loads");
        assert_eq!(value["mappings"], Value::Sequence(vec![]));
        assert_eq!(issues.len(), 10);
    }

    #[test]
    fn an_alias_bomb_where_it_is_decoded_is_refused_as_go_yaml_refuses_it() {
        for tail in [
            "mappings: *a9\n",
            "mappings:\n  - match: a\n    name: b\n    labels: {k: *a9}\n",
            "mappings:\n  - match: a\n    name: b\n    labels: {<<: *b9}\n",
        ] {
            // And the same as mappings, for merge keys.
            let mut maps = "y0: &b0 {a: lol, b: lol, c: lol, d: lol, e: lol}\n".to_string();
            for i in 1..10 {
                let p = i - 1;
                maps.push_str(&format!(
                    "y{i}: &b{i} {{a: *b{p}, b: *b{p}, c: *b{p}, d: *b{p}, e: *b{p}}}\n"
                ));
            }
            let text = format!("{}{maps}{tail}", alias_bomb(10));
            let e = read(&text).expect_err(tail);
            assert_eq!(e.message, EXCESSIVE_ALIASING, "{tail}");
        }
    }

    #[test]
    fn many_ordinary_aliases_load() {
        let mut text = "x: &l {team: core, tier: web}\nmappings:\n".to_string();
        for i in 0..3000 {
            text.push_str(&format!(
                "  - match: a{i}\n    name: m{i}\n    labels: *l\n"
            ));
        }
        let (value, _) = read(&text).expect("loads");
        assert_eq!(
            value["mappings"][2999]["labels"]["tier"],
            Value::String("web".into())
        );
    }
}
