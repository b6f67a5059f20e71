//! Where each key and value of the policy file stands, so that errors found
//! after parsing (bad pattern, unknown rate-limit name, missing variable)
//! still name a line and a column. serde_yaml gives no spans, so the file is
//! read a second time with yaml-rust2's event parser, which marks every node.

use std::collections::HashMap;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// 1-based line and column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

/// Positions keyed by dotted paths such as `routes[2].path`.
#[derive(Debug, Default)]
pub struct Positions {
    keys: HashMap<String, Pos>,
    values: HashMap<String, Pos>,
}

enum Frame {
    Map {
        path: String,
        key: Option<String>,
        seen_key: bool,
    },
    Seq {
        path: String,
        index: usize,
    },
}

struct Collector {
    stack: Vec<Frame>,
    out: Positions,
}

fn pos(mark: Marker) -> Pos {
    Pos {
        line: mark.line(),
        col: mark.col() + 1,
    }
}

pub fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

impl Collector {
    /// Decides whether a node is a mapping key, and if not, returns the value's path.
    fn place(&mut self, ev: &Event, mark: Marker) -> Option<String> {
        match self.stack.last_mut() {
            None => Some(String::new()),
            Some(Frame::Map {
                path,
                key,
                seen_key,
            }) => match key.take() {
                None => {
                    let name = match ev {
                        Event::Scalar(s, ..) => s.clone(),
                        _ => "?".to_string(),
                    };
                    // A block mapping is best pointed at by its first key
                    // (its own start mark stands at the first `:`).
                    if !*seen_key && !path.is_empty() {
                        self.out.values.insert(path.clone(), pos(mark));
                    }
                    *seen_key = true;
                    self.out.keys.insert(join(path, &name), pos(mark));
                    *key = Some(name);
                    None
                }
                Some(name) => Some(join(path, &name)),
            },
            Some(Frame::Seq { path, index }) => {
                let p = format!("{path}[{index}]");
                *index += 1;
                Some(p)
            }
        }
    }
}

impl MarkedEventReceiver for Collector {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::Scalar(..) | Event::Alias(..) => {
                if let Some(path) = self.place(&ev, mark) {
                    self.out.values.insert(path, pos(mark));
                }
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                // A complex (non-scalar) key gets a placeholder path; nothing valid uses one.
                let path = self.place(&ev, mark).unwrap_or_else(|| "?".to_string());
                self.out.values.insert(path.clone(), pos(mark));
                self.stack.push(match ev {
                    Event::MappingStart(..) => Frame::Map {
                        path,
                        key: None,
                        seen_key: false,
                    },
                    _ => Frame::Seq { path, index: 0 },
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

impl Positions {
    /// Reads positions from YAML text; a text that does not parse gives none
    /// (serde_yaml reports the syntax error with its own position).
    pub fn of(text: &str) -> Positions {
        let mut collector = Collector {
            stack: Vec::new(),
            out: Positions::default(),
        };
        let mut parser = Parser::new_from_str(text);
        let _ = parser.load(&mut collector, false);
        collector.out
    }

    /// The value at `path`, else its key, else the nearest ancestor that has a position.
    pub fn value(&self, path: &str) -> Pos {
        let mut p = path;
        loop {
            if let Some(pos) = self.values.get(p).or_else(|| self.keys.get(p)) {
                return *pos;
            }
            match p.rfind(['.', '[']) {
                Some(i) => p = &p[..i],
                None => return Pos { line: 1, col: 1 },
            }
        }
    }

    /// The key at `path` (for unknown-field errors), else the value.
    pub fn key(&self, path: &str) -> Pos {
        self.keys
            .get(path)
            .copied()
            .unwrap_or_else(|| self.value(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_keys_and_values_in_nested_maps_and_lists() {
        let text =
            "server:\n  listen: 1.2.3.4:5\nroutes:\n  - name: a\n    path: /x\n  - path: /y\n";
        let p = Positions::of(text);
        assert_eq!(p.value("server.listen"), Pos { line: 2, col: 11 });
        assert_eq!(p.key("server.listen"), Pos { line: 2, col: 3 });
        assert_eq!(p.value("routes[0].path"), Pos { line: 5, col: 11 });
        assert_eq!(p.value("routes[1].path"), Pos { line: 6, col: 11 });
        assert_eq!(p.value("routes[1].missing").line, 6);
    }
}
