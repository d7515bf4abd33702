//! Rooms, and who a broadcast reaches: what socket.io's adapters do. The
//! selection is one value ([`BroadcastOptions`]) and one function
//! ([`Rooms::select`]), serving emits, broadcast acks, `fetchSockets`,
//! `socketsJoin`/`socketsLeave` and `disconnectSockets` alike. This is the
//! local membership, the default; an adapter that spans nodes (Redis, #12)
//! takes the same options to the others.
//!
//! Rooms are topics of a topic tree, one per `(namespace, room)`, plus one
//! per namespace holding all of its sockets. A socket's own room (named by
//! its id) is a lookup rather than a topic: a topic per socket cost ~250 B.

use std::collections::HashMap;

use crate::pubsub::TopicTree;

pub(crate) mod recovery;
pub(crate) mod redis;

/// What the rooms hold for each member: a value that knows its key (a
/// Socket.IO client, whose sockets in every namespace share it).
pub(crate) trait Member: Clone {
    fn key(&self) -> u64;
}

/// Who an emit or an operator reaches, as socket.io's `BroadcastOptions`:
/// the union of `rooms` (the whole namespace when empty), minus every member
/// of `except`, minus `except_client` (the sender of `socket.broadcast` and
/// `socket.to`). Flags such as `local` join when an adapter spans nodes.
#[derive(Debug, Clone, Default)]
pub(crate) struct BroadcastOptions {
    pub nsp: String,
    pub rooms: Vec<String>,
    pub except: Vec<String>,
    pub except_client: Option<u64>,
}

/// Topic names: the namespace's length first, so that no room name, however
/// chosen, can spell another namespace's topic (`/a` + `b#c` vs `/a#b` + `c`),
/// and the namespace-wide topic has no `#` after the name.
fn room_topic(nsp: &str, room: &str) -> String {
    format!("{}:{nsp}#{room}", nsp.len())
}

fn nsp_topic(nsp: &str) -> String {
    format!("{}:{nsp}", nsp.len())
}

pub(crate) struct Rooms<M> {
    tree: TopicTree<M>,
    /// Each socket's own room, by its topic name (`room_topic(nsp, id)`).
    own: HashMap<Box<str>, M>,
}

impl<M> Default for Rooms<M> {
    fn default() -> Self {
        Self { tree: TopicTree::default(), own: HashMap::new() }
    }
}

impl<M: Member> Rooms<M> {
    /// A socket of `member` entered `nsp`: it is in the namespace and in its
    /// own room.
    pub(crate) fn add_socket(&mut self, member: &M, nsp: &str, socket_id: &str) {
        self.tree.subscribe(member.key(), member, &nsp_topic(nsp));
        self.own.insert(room_topic(nsp, socket_id).into(), member.clone());
    }

    /// The socket of `member` in `nsp` joins `room` (false if it was in it).
    pub(crate) fn join(&mut self, member: &M, nsp: &str, room: &str) -> bool {
        self.tree.subscribe(member.key(), member, &room_topic(nsp, room))
    }

    /// Leaving the room named by the socket's own id leaves its own room.
    pub(crate) fn leave(&mut self, key: u64, nsp: &str, room: &str) -> bool {
        let topic = room_topic(nsp, room);
        self.tree.unsubscribe(key, &topic) || self.drop_own(key, &topic)
    }

    /// Forgets the own room `topic` if it is client `key`'s (a socket id
    /// names one socket: never another client's room).
    fn drop_own(&mut self, key: u64, topic: &str) -> bool {
        if self.own.get(topic).is_none_or(|m| m.key() != key) {
            return false;
        }
        self.own.remove(topic);
        true
    }

    /// The socket `socket_id` of client `key` leaves `nsp`: its rooms there,
    /// its own room and the namespace.
    pub(crate) fn remove_socket(&mut self, key: u64, nsp: &str, socket_id: &str) {
        self.drop_own(key, &room_topic(nsp, socket_id));
        let (whole, prefix) = (nsp_topic(nsp), room_topic(nsp, ""));
        for t in self.tree.topics_of(key) {
            if *t == *whole || t.starts_with(&prefix) {
                self.tree.unsubscribe(key, &t);
            }
        }
    }

    /// Client `key` is gone: every room of every namespace; `sockets` are
    /// its (namespace, socket id) pairs still here.
    pub(crate) fn remove_client<'a>(&mut self, key: u64, sockets: impl Iterator<Item = (&'a str, &'a str)>) {
        self.tree.unsubscribe_all(key);
        for (nsp, id) in sockets {
            self.drop_own(key, &room_topic(nsp, id));
        }
    }

    /// The members `opts` reaches, each once, in no particular order.
    pub(crate) fn select(&self, opts: &BroadcastOptions) -> Vec<M> {
        let nsp = opts.nsp.as_str();
        let topics: Vec<String> = if opts.rooms.is_empty() {
            vec![nsp_topic(nsp)]
        } else {
            opts.rooms.iter().map(|r| room_topic(nsp, r)).collect()
        };
        let except: Vec<String> = opts.except.iter().map(|r| room_topic(nsp, r)).collect();
        let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
        let except: Vec<&str> = except.iter().map(String::as_str).collect();
        // Own rooms among the targets and the exceptions (their names are
        // the same topic names, looked up rather than subscribed).
        let own_in: Vec<&M> = topics.iter().filter_map(|t| self.own.get(*t)).collect();
        let own_out: Vec<u64> = except.iter().filter_map(|t| self.own.get(*t)).map(Member::key).collect();
        let mut targets = Vec::new();
        self.tree.for_each_union(&topics, &except, opts.except_client, |k, m| {
            if !own_out.contains(&k) {
                targets.push(m.clone())
            }
        });
        for m in own_in {
            let k = m.key();
            let dup = topics.iter().any(|t| self.tree.is_subscribed(k, t));
            let excluded = Some(k) == opts.except_client
                || own_out.contains(&k)
                || except.iter().any(|t| self.tree.is_subscribed(k, t));
            if !dup && !excluded && !targets.iter().any(|t: &M| t.key() == k) {
                targets.push(m.clone());
            }
        }
        targets
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Member for u64 {
        fn key(&self) -> u64 {
            *self
        }
    }

    fn opts(nsp: &str, rooms: &[&str], except: &[&str], except_client: Option<u64>) -> BroadcastOptions {
        BroadcastOptions {
            nsp: nsp.into(),
            rooms: rooms.iter().map(|r| r.to_string()).collect(),
            except: except.iter().map(|r| r.to_string()).collect(),
            except_client,
        }
    }

    fn sorted(mut v: Vec<u64>) -> Vec<u64> {
        v.sort();
        v
    }

    /// Clients 1..=4 in "/", with socket ids s1..s4; 1 and 2 in room "a",
    /// 2 and 3 in room "b"; client 5 only in "/other" (socket o5, room "a").
    fn sample() -> Rooms<u64> {
        let mut r = Rooms::default();
        for k in 1..=4u64 {
            r.add_socket(&k, "/", &format!("s{k}"));
        }
        r.join(&1, "/", "a");
        r.join(&2, "/", "a");
        r.join(&2, "/", "b");
        r.join(&3, "/", "b");
        r.add_socket(&5, "/other", "o5");
        r.join(&5, "/other", "a");
        r
    }

    #[test]
    fn selection_follows_rooms_except_and_the_sender() {
        let r = sample();
        assert_eq!(sorted(r.select(&opts("/", &[], &[], None))), vec![1, 2, 3, 4]);
        assert_eq!(sorted(r.select(&opts("/", &["a"], &[], None))), vec![1, 2]);
        assert_eq!(sorted(r.select(&opts("/", &["a", "b"], &[], None))), vec![1, 2, 3]);
        assert_eq!(sorted(r.select(&opts("/", &["a", "b"], &["b"], None))), vec![1]);
        assert_eq!(sorted(r.select(&opts("/", &[], &["a"], Some(4)))), vec![3]);
        assert_eq!(sorted(r.select(&opts("/other", &["a"], &[], None))), vec![5]);
    }

    #[test]
    fn own_rooms_are_rooms_of_their_namespace_only() {
        let r = sample();
        assert_eq!(r.select(&opts("/", &["s3"], &[], None)), vec![3]);
        assert_eq!(sorted(r.select(&opts("/", &["s3", "a"], &[], None))), vec![1, 2, 3]);
        assert_eq!(sorted(r.select(&opts("/", &["a"], &["s1"], None))), vec![2]);
        // A socket id of another namespace names nobody here.
        assert!(r.select(&opts("/", &["o5"], &[], None)).is_empty());
        assert!(r.select(&opts("/other", &["s1"], &[], None)).is_empty());
    }

    #[test]
    fn room_names_cannot_reach_another_namespace() {
        let mut r: Rooms<u64> = Rooms::default();
        r.add_socket(&1, "/a", "x1");
        r.join(&1, "/a", "b#c");
        r.add_socket(&2, "/a#b", "x2");
        r.join(&2, "/a#b", "c");
        assert_eq!(r.select(&opts("/a", &["b#c"], &[], None)), vec![1]);
        assert_eq!(r.select(&opts("/a#b", &["c"], &[], None)), vec![2]);
        // Leaving the empty-named room is not leaving the namespace.
        r.join(&1, "/a", "");
        r.leave(1, "/a", "");
        assert_eq!(r.select(&opts("/a", &[], &[], None)), vec![1]);
    }

    #[test]
    fn a_removed_socket_is_in_none_of_its_namespace_rooms() {
        let mut r = sample();
        r.remove_socket(2, "/", "s2");
        assert_eq!(sorted(r.select(&opts("/", &[], &[], None))), vec![1, 3, 4]);
        assert_eq!(r.select(&opts("/", &["a"], &[], None)), vec![1]);
        assert!(r.select(&opts("/", &["s2"], &[], None)).is_empty());
        r.remove_client(5, [("/other", "o5")].into_iter());
        // Leaving one's own room (socket.leave(socket.id)): no longer reached by it.
        assert!(!r.leave(1, "/", "s3"), "not another's own room");
        assert_eq!(r.select(&opts("/", &["s3"], &[], None)), vec![3]);
        assert!(r.leave(3, "/", "s3"));
        assert!(r.select(&opts("/", &["s3"], &[], None)).is_empty());
        assert!(r.select(&opts("/other", &[], &[], None)).is_empty());
        assert!(r.select(&opts("/other", &["o5"], &[], None)).is_empty());
    }
}
