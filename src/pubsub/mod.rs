//! The topic tree: topic <-> subscribers, indexed in both directions.
//!
//! uWS keeps one such tree per app and so do we; Socket.IO rooms are topics
//! in the same tree. It is a plain data structure (no I/O, no locks): the
//! server wraps it in one mutex, because subscribe/publish come from the JS
//! thread and only socket close comes from the I/O workers.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use slab::Slab;

/// Opaque subscriber identity (the connection id).
pub(crate) type SubId = u64;

struct Topic<S> {
    name: Arc<str>,
    subs: Slab<(SubId, S)>,
}

/// One subscription as seen from the subscriber: which topic, and where in
/// that topic's slab, so unsubscribe is O(1) without searching.
#[derive(Clone, Copy)]
struct Link {
    topic: u32,
    slot: u32,
}

pub(crate) struct TopicTree<S> {
    by_name: HashMap<Arc<str>, u32>,
    topics: Slab<Topic<S>>,
    by_sub: HashMap<SubId, Vec<Link>>,
}

impl<S> Default for TopicTree<S> {
    fn default() -> Self {
        Self { by_name: HashMap::new(), topics: Slab::new(), by_sub: HashMap::new() }
    }
}

impl<S: Clone> TopicTree<S> {
    /// Returns false when `sub` was already subscribed to `topic`.
    pub(crate) fn subscribe(&mut self, id: SubId, sub: &S, topic: &str) -> bool {
        if self.is_subscribed(id, topic) {
            return false;
        }
        let tid = match self.by_name.get(topic) {
            Some(&t) => t,
            None => {
                let name: Arc<str> = Arc::from(topic);
                let t = self.topics.insert(Topic { name: name.clone(), subs: Slab::new() }) as u32;
                self.by_name.insert(name, t);
                t
            }
        };
        let slot = self.topics[tid as usize].subs.insert((id, sub.clone())) as u32;
        self.by_sub.entry(id).or_default().push(Link { topic: tid, slot });
        true
    }

    /// Returns false when `sub` was not subscribed to `topic`.
    pub(crate) fn unsubscribe(&mut self, id: SubId, topic: &str) -> bool {
        let Some(&tid) = self.by_name.get(topic) else {
            return false;
        };
        let Some(links) = self.by_sub.get_mut(&id) else {
            return false;
        };
        let Some(pos) = links.iter().position(|l| l.topic == tid) else {
            return false;
        };
        let link = links.swap_remove(pos);
        if links.is_empty() {
            self.by_sub.remove(&id);
        }
        self.detach(link);
        true
    }

    /// Drops every subscription of `id` (socket closed). Returns how many.
    pub(crate) fn unsubscribe_all(&mut self, id: SubId) -> usize {
        let Some(links) = self.by_sub.remove(&id) else {
            return 0;
        };
        for &l in &links {
            self.detach(l);
        }
        links.len()
    }

    fn detach(&mut self, link: Link) {
        let topic = &mut self.topics[link.topic as usize];
        topic.subs.remove(link.slot as usize);
        // Empty topics are deleted so a stream of one-off rooms cannot grow the tree.
        if topic.subs.is_empty() {
            let t = self.topics.remove(link.topic as usize);
            self.by_name.remove(&t.name);
        }
    }

    pub(crate) fn is_subscribed(&self, id: SubId, topic: &str) -> bool {
        match (self.by_name.get(topic), self.by_sub.get(&id)) {
            (Some(&tid), Some(links)) => links.iter().any(|l| l.topic == tid),
            _ => false,
        }
    }

    pub(crate) fn topics_of(&self, id: SubId) -> Vec<Arc<str>> {
        self.by_sub
            .get(&id)
            .map_or_else(Vec::new, |links| links.iter().map(|l| self.topics[l.topic as usize].name.clone()).collect())
    }

    pub(crate) fn num_subscribers(&self, topic: &str) -> usize {
        self.by_name.get(topic).map_or(0, |&t| self.topics[t as usize].subs.len())
    }

    #[cfg(test)]
    pub(crate) fn num_topics(&self) -> usize {
        self.topics.len()
    }

    /// Calls `f` once for each subscriber of `topic` except `skip`.
    pub(crate) fn for_each(&self, topic: &str, skip: Option<SubId>, mut f: impl FnMut(SubId, &S)) {
        let Some(&t) = self.by_name.get(topic) else {
            return;
        };
        for (_, (id, s)) in self.topics[t as usize].subs.iter() {
            if Some(*id) != skip {
                f(*id, s);
            }
        }
    }

    /// Calls `f` once for each subscriber of ANY of `topics` (each at most
    /// once), skipping `skip` and every subscriber of any of `except`.
    pub(crate) fn for_each_union(
        &self,
        topics: &[&str],
        except: &[&str],
        skip: Option<SubId>,
        mut f: impl FnMut(SubId, &S),
    ) {
        let mut excluded: HashSet<SubId> = HashSet::new();
        for e in except {
            self.for_each(e, None, |id, _| {
                excluded.insert(id);
            });
        }
        if let Some(s) = skip {
            excluded.insert(s);
        }
        if topics.len() == 1 && excluded.is_empty() {
            return self.for_each(topics[0], None, f);
        }
        let mut seen: HashSet<SubId> = HashSet::new();
        for t in topics {
            self.for_each(t, None, |id, s| {
                if !excluded.contains(&id) && seen.insert(id) {
                    f(id, s);
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(tree: &TopicTree<u64>, topic: &str, skip: Option<SubId>) -> Vec<u64> {
        let mut v = Vec::new();
        tree.for_each(topic, skip, |id, s| {
            assert_eq!(id, *s);
            v.push(id)
        });
        v.sort_unstable();
        v
    }

    #[test]
    fn subscribe_is_idempotent_and_indexed_both_ways() {
        let mut t = TopicTree::default();
        assert!(t.subscribe(1, &1, "a"));
        assert!(!t.subscribe(1, &1, "a"));
        assert!(t.subscribe(1, &1, "b"));
        assert!(t.subscribe(2, &2, "a"));
        assert_eq!(t.num_subscribers("a"), 2);
        assert!(t.is_subscribed(1, "b") && !t.is_subscribed(2, "b"));
        let mut topics: Vec<String> = t.topics_of(1).iter().map(|s| s.to_string()).collect();
        topics.sort();
        assert_eq!(topics, ["a", "b"]);
        assert_eq!(ids(&t, "a", None), [1, 2]);
    }

    #[test]
    fn publish_skip_excludes_only_the_sender() {
        let mut t = TopicTree::default();
        for i in 1..=3 {
            t.subscribe(i, &i, "x");
        }
        assert_eq!(ids(&t, "x", Some(2)), [1, 3]);
        assert_eq!(ids(&t, "nope", None), Vec::<u64>::new());
    }

    #[test]
    fn empty_topics_are_deleted() {
        let mut t = TopicTree::default();
        t.subscribe(1, &1, "a");
        t.subscribe(2, &2, "a");
        assert!(t.unsubscribe(1, "a"));
        assert!(!t.unsubscribe(1, "a"));
        assert_eq!(t.num_topics(), 1);
        assert!(t.unsubscribe(2, "a"));
        assert_eq!(t.num_topics(), 0);
        assert_eq!(t.num_subscribers("a"), 0);
        assert!(t.by_sub.is_empty());
    }

    #[test]
    fn unsubscribe_all_removes_every_link() {
        let mut t = TopicTree::default();
        for name in ["a", "b", "c"] {
            t.subscribe(7, &7, name);
            t.subscribe(8, &8, name);
        }
        assert_eq!(t.unsubscribe_all(7), 3);
        assert_eq!(t.unsubscribe_all(7), 0);
        for name in ["a", "b", "c"] {
            assert_eq!(ids(&t, name, None), [8]);
        }
        t.unsubscribe_all(8);
        assert_eq!(t.num_topics(), 0);
    }

    #[test]
    fn slots_are_reused_without_confusing_subscribers() {
        let mut t = TopicTree::default();
        t.subscribe(1, &1, "a");
        t.subscribe(2, &2, "a");
        t.unsubscribe(1, "a");
        t.subscribe(3, &3, "a"); // reuses slot of 1
        t.unsubscribe(2, "a");
        assert_eq!(ids(&t, "a", None), [3]);
        assert!(t.unsubscribe(3, "a"));
        assert_eq!(t.num_topics(), 0);
    }

    #[test]
    fn union_visits_each_subscriber_once_and_honours_except() {
        let mut t = TopicTree::default();
        t.subscribe(1, &1, "r1");
        t.subscribe(1, &1, "r2");
        t.subscribe(2, &2, "r2");
        t.subscribe(3, &3, "r3");
        t.subscribe(3, &3, "r1");
        let mut seen = Vec::new();
        t.for_each_union(&["r1", "r2"], &["r3"], None, |id, _| seen.push(id));
        seen.sort_unstable();
        assert_eq!(seen, [1, 2]);
        seen.clear();
        t.for_each_union(&["r1", "r2", "r3"], &[], Some(2), |id, _| seen.push(id));
        seen.sort_unstable();
        assert_eq!(seen, [1, 3]);
    }
}
