//! Where each key of a mapping file is, so that semantic errors (a bad regex, a bad template, an invalid
//! label name) name file:line:column, not only YAML syntax errors.
//!
//! serde_yaml locates syntax and type errors itself but keeps no positions for valid values, so the file
//! is also read once as a stream of YAML events (yaml-rust2), recording the position of every mapping
//! key and sequence item under its path: `mappings.3`, `mappings.3.match`, `mappings.3.labels.table`.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub column: usize,
}

impl Position {
    fn earlier(self, other: Position) -> Position {
        if (other.line, other.column) < (self.line, self.column) {
            other
        } else {
            self
        }
    }
}

impl From<Marker> for Position {
    fn from(m: Marker) -> Self {
        Self {
            line: m.line(),
            column: m.col() + 1,
        }
    }
}

/// Positions by dotted path.
#[derive(Debug, Default)]
pub(crate) struct Positions {
    by_path: HashMap<String, Position>,
}

impl Positions {
    /// Indexes `text`. A file that does not parse yields no positions (serde_yaml reports that error).
    pub(crate) fn index(text: &str) -> Self {
        let mut recorder = Recorder::default();
        let _ = Parser::new_from_str(text).load(&mut recorder, false);
        Self {
            by_path: recorder.by_path,
        }
    }

    /// The position of `path` (`mappings.3.match`), falling back to its nearest recorded parent.
    pub(crate) fn find(&self, path: &str) -> Option<Position> {
        let mut p = path;
        loop {
            if let Some(pos) = self.by_path.get(p) {
                return Some(*pos);
            }
            p = &p[..p.rfind('.')?];
        }
    }
}

/// One open container on the way down.
enum Frame {
    /// A mapping; `key` is the key whose value comes next, if any.
    Map { key: Option<String> },
    /// A sequence and the index of its next item.
    Seq { next: usize },
}

#[derive(Default)]
struct Recorder {
    stack: Vec<Frame>,
    /// Path segments of the open containers (one per frame below the root).
    path: Vec<String>,
    by_path: HashMap<String, Position>,
}

impl Recorder {
    /// The path of the value that the next event starts, recording it at `mark`.
    fn enter_value(&mut self, mark: Marker) -> Option<String> {
        let segment = match self.stack.last_mut()? {
            Frame::Map { key } => key.take()?,
            Frame::Seq { next } => {
                *next += 1;
                (*next - 1).to_string()
            }
        };
        let full = if self.path.is_empty() {
            segment.clone()
        } else {
            format!("{}.{segment}", self.path.join("."))
        };
        self.record(full, mark.into());
        Some(segment)
    }

    /// Records `pos` for `path`, keeping the earliest position seen. yaml-rust2 marks the start of a
    /// block mapping at its first value, so a container also takes the position of its first key.
    fn record(&mut self, path: String, pos: Position) {
        if let Some(parent) = path.rfind('.').map(|i| path[..i].to_string()) {
            self.by_path
                .entry(parent)
                .and_modify(|p| *p = p.earlier(pos));
        }
        self.by_path
            .entry(path)
            .and_modify(|p| *p = p.earlier(pos))
            .or_insert(pos);
    }
}

impl MarkedEventReceiver for Recorder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let segment = self.enter_value(mark);
                if !self.stack.is_empty() {
                    self.path.push(segment.unwrap_or_default());
                }
                self.stack.push(if matches!(ev, Event::MappingStart(..)) {
                    Frame::Map { key: None }
                } else {
                    Frame::Seq { next: 0 }
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
                if !self.stack.is_empty() {
                    self.path.pop();
                }
            }
            Event::Scalar(value, ..) => {
                // A scalar in key position names the next value and marks where the key is written.
                if let Some(Frame::Map { key }) = self.stack.last_mut()
                    && key.is_none()
                {
                    *key = Some(value.clone());
                    let full = if self.path.is_empty() {
                        value
                    } else {
                        format!("{}.{value}", self.path.join("."))
                    };
                    self.record(full, mark.into());
                    return;
                }
                self.enter_value(mark);
            }
            Event::Alias(_) => {
                self.enter_value(mark);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_items_are_located() {
        let text = "mappings:\n  - match: a.*\n    name: x\n    labels:\n      job: y\n  - match: b\n    name: z\n";
        let p = Positions::index(text);
        assert_eq!(p.find("mappings"), Some(Position { line: 1, column: 1 }));
        assert_eq!(p.find("mappings.0"), Some(Position { line: 2, column: 5 }));
        assert_eq!(
            p.find("mappings.0.match"),
            Some(Position { line: 2, column: 5 })
        );
        assert_eq!(
            p.find("mappings.0.labels.job"),
            Some(Position { line: 5, column: 7 })
        );
        assert_eq!(
            p.find("mappings.1.name"),
            Some(Position { line: 7, column: 5 })
        );
        // Unknown paths fall back to the nearest parent.
        assert_eq!(
            p.find("mappings.1.help"),
            Some(Position { line: 6, column: 5 })
        );
    }

    #[test]
    fn flow_style_is_located_too() {
        let p = Positions::index("mappings: [{match: a, name: b}, {match: c, name: d}]\n");
        assert_eq!(p.find("mappings.1.match").map(|p| p.line), Some(1));
        assert_eq!(p.find("mappings.1.match").map(|p| p.column), Some(34));
    }
}
