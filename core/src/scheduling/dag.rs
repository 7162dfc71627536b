//! The dependency graph of stream tables: an edge `source -> stream table` for every relation a
//! defining query reads. Sources are base tables or other stream tables; a cycle is refused with
//! its path in the error, and refreshes run in topological order (upstream first).

use crate::error::{PgtError, Result};
use petgraph::algo::{has_path_connecting, toposort};
use petgraph::graphmap::DiGraphMap;

/// A relation in the graph, by OID.
pub type RelId = u32;

#[derive(Debug, Default, Clone)]
pub struct Dag {
    graph: DiGraphMap<RelId, ()>,
}

impl Dag {
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds the graph from `(source, stream_table)` edges.
    pub fn from_edges(edges: impl IntoIterator<Item = (RelId, RelId)>) -> Self {
        let mut dag = Dag::new();
        for (s, t) in edges {
            dag.graph.add_edge(s, t, ());
        }
        dag
    }

    /// Replaces the sources of `stream_table` with `sources`, refusing the change if it would make
    /// a cycle. On error the graph is unchanged. `name` renders a relation for the message.
    pub fn set_sources(
        &mut self,
        stream_table: RelId,
        sources: &[RelId],
        name: impl Fn(RelId) -> String,
    ) -> Result<()> {
        let mut next = self.graph.clone();
        let old: Vec<RelId> = next
            .neighbors_directed(stream_table, petgraph::Direction::Incoming)
            .collect();
        for s in old {
            next.remove_edge(s, stream_table);
        }
        next.add_node(stream_table);
        for &s in sources {
            if s == stream_table || has_path_connecting(&next, stream_table, s, None) {
                let mut path = path_between(&next, stream_table, s);
                path.push(stream_table);
                let rendered: Vec<String> = path.into_iter().map(&name).collect();
                return Err(PgtError::Cycle(rendered.join(" -> ")));
            }
            next.add_edge(s, stream_table, ());
        }
        self.graph = next;
        Ok(())
    }

    /// Stream tables that read `rel` directly.
    pub fn dependents(&self, rel: RelId) -> Vec<RelId> {
        self.neighbors(rel, petgraph::Direction::Outgoing)
    }

    /// Whether `rel` is in the graph (it reads or is read by something).
    pub fn contains(&self, rel: RelId) -> bool {
        self.graph.contains_node(rel)
    }

    /// Relations `rel` reads directly.
    pub fn sources(&self, rel: RelId) -> Vec<RelId> {
        self.neighbors(rel, petgraph::Direction::Incoming)
    }

    fn neighbors(&self, rel: RelId, dir: petgraph::Direction) -> Vec<RelId> {
        if !self.graph.contains_node(rel) {
            return Vec::new();
        }
        let mut v: Vec<RelId> = self.graph.neighbors_directed(rel, dir).collect();
        v.sort_unstable();
        v
    }

    /// All relations, upstream before downstream (ties broken by OID for determinism).
    pub fn topological_order(&self) -> Vec<RelId> {
        // The graph is kept acyclic by set_sources, so toposort cannot fail.
        let mut order = toposort(&self.graph, None).unwrap_or_default();
        // Stable, deterministic order: sort by (depth, oid).
        let mut depth = std::collections::HashMap::new();
        for &n in &order {
            let d = self
                .graph
                .neighbors_directed(n, petgraph::Direction::Incoming)
                .map(|p| depth.get(&p).copied().unwrap_or(0) + 1)
                .max()
                .unwrap_or(0);
            depth.insert(n, d);
        }
        order.sort_by_key(|n| (depth[n], *n));
        order
    }
}

/// A path `from -> ... -> to` (inclusive), found by breadth-first search; empty if none.
fn path_between(g: &DiGraphMap<RelId, ()>, from: RelId, to: RelId) -> Vec<RelId> {
    use std::collections::{HashMap, VecDeque};
    if from == to {
        return vec![from];
    }
    let mut prev: HashMap<RelId, RelId> = HashMap::new();
    let mut queue = VecDeque::from([from]);
    while let Some(n) = queue.pop_front() {
        for m in g.neighbors_directed(n, petgraph::Direction::Outgoing) {
            if m != from && !prev.contains_key(&m) {
                prev.insert(m, n);
                if m == to {
                    let mut path = vec![to];
                    let mut cur = to;
                    while let Some(&p) = prev.get(&cur) {
                        path.push(p);
                        cur = p;
                    }
                    path.reverse();
                    return path;
                }
                queue.push_back(m);
            }
        }
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::SqlState;

    fn n(r: RelId) -> String {
        format!("r{r}")
    }

    #[test]
    fn chain_order_and_dependents() {
        // 1 (table) -> 10 -> 11 -> 12, and 2 (table) -> 11
        let mut d = Dag::new();
        d.set_sources(10, &[1], n).unwrap();
        d.set_sources(11, &[10, 2], n).unwrap();
        d.set_sources(12, &[11], n).unwrap();
        let order = d.topological_order();
        let pos = |x| order.iter().position(|&y| y == x).unwrap();
        assert!(pos(1) < pos(10) && pos(10) < pos(11) && pos(2) < pos(11) && pos(11) < pos(12));
        assert_eq!(d.dependents(10), vec![11]);
        assert_eq!(d.dependents(12), Vec::<RelId>::new());
    }

    #[test]
    fn cycles_are_refused_with_their_path() {
        let mut d = Dag::new();
        d.set_sources(10, &[1], n).unwrap();
        d.set_sources(11, &[10], n).unwrap();
        d.set_sources(12, &[11], n).unwrap();
        // Replacing 10's query with one that reads 12 closes 10 -> 11 -> 12 -> 10.
        let err = d.set_sources(10, &[12], n).unwrap_err();
        assert_eq!(err.sqlstate(), SqlState::InvalidObjectDefinition);
        assert_eq!(
            err.to_string(),
            "the stream table dependency graph would contain a cycle: r10 -> r11 -> r12 -> r10"
        );
        // The graph is unchanged.
        assert_eq!(d.dependents(1), vec![10]);
        assert!(d.set_sources(10, &[10], n).is_err(), "self reference");
    }

    #[test]
    fn replacing_sources_drops_old_edges() {
        let mut d = Dag::new();
        d.set_sources(10, &[1, 2], n).unwrap();
        d.set_sources(10, &[3], n).unwrap();
        assert!(d.dependents(1).is_empty());
        assert_eq!(d.dependents(3), vec![10]);
    }
}
