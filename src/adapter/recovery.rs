//! Connection state recovery's packet log (socket.io's `SessionAwareAdapter`
//! keeps the same): every stored broadcast under an offset, so that a client
//! coming back with the offset of the last packet it processed gets what it
//! missed. The packets are the very messages the broadcast sent (shared, not
//! copied); what a session was (id, rooms, data) is kept by the layer above.
//!
//! Bounded twice: by age (`max_age`, socket.io's `maxDisconnectionDuration`:
//! a session older than that is not restored, so neither are its packets
//! needed) and by bytes (`max_bytes`: socket.io keeps every packet of the
//! last two minutes, however many; a busy server must not grow without end).
//! A client whose offset was dropped is not recovered, as in socket.io when
//! the offset is too old.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::BroadcastOptions;

#[derive(Debug, Clone, Copy)]
pub(crate) struct RecoveryConfig {
    pub max_age: Duration,
    pub max_bytes: usize,
}

struct Stored<T> {
    at: Instant,
    opts: BroadcastOptions,
    bytes: usize,
    packet: T,
}

/// The log. Offsets are `{prefix}{n}`: `n` counts up from 0 per log, and the
/// prefix (random, per server) tells this server's offsets from another's or
/// an earlier run's, which are simply not found.
pub(crate) struct PacketLog<T> {
    cfg: RecoveryConfig,
    prefix: Box<str>,
    /// The number of the packet at the front of `packets`.
    first: u64,
    packets: VecDeque<Stored<T>>,
    bytes: usize,
}

impl<T> PacketLog<T> {
    pub(crate) fn new(cfg: RecoveryConfig, prefix: &str) -> Self {
        Self { cfg, prefix: prefix.into(), first: 0, packets: VecDeque::new(), bytes: 0 }
    }

    /// Stores one packet under the next offset: `build` gets the offset (to
    /// put into the packet, as socket.io appends it to the event's data) and
    /// returns the packet and what it costs in bytes.
    pub(crate) fn store(&mut self, now: Instant, opts: BroadcastOptions, build: impl FnOnce(&str) -> (T, usize)) -> &T {
        let offset = format!("{}{}", self.prefix, self.first + self.packets.len() as u64);
        let (packet, bytes) = build(&offset);
        self.bytes += bytes;
        self.packets.push_back(Stored { at: now, opts, bytes, packet });
        // The one just stored stays, whatever its size: its recipients hold
        // its offset as their latest.
        while self.bytes > self.cfg.max_bytes && self.packets.len() > 1 {
            self.pop();
        }
        self.trim(now);
        &self.packets.back().expect("just pushed").packet
    }

    /// Drops packets older than `max_age`.
    pub(crate) fn trim(&mut self, now: Instant) {
        while self.packets.front().is_some_and(|p| now.saturating_duration_since(p.at) > self.cfg.max_age) {
            self.pop();
        }
    }

    fn pop(&mut self) {
        if let Some(p) = self.packets.pop_front() {
            self.bytes -= p.bytes;
            self.first += 1;
        }
    }

    /// The packets stored after `offset` that a session of `nsp` with these
    /// `rooms` (its own room included) and this client key would have been
    /// sent, oldest first; None if `offset` is not (or no longer) here.
    pub(crate) fn missed<'a>(
        &'a self,
        offset: &str,
        nsp: &'a str,
        rooms: &'a [String],
        key: Option<u64>,
    ) -> Option<impl Iterator<Item = &'a T> + 'a> {
        let n: u64 = offset.strip_prefix(&*self.prefix)?.parse().ok()?;
        let index = usize::try_from(n.checked_sub(self.first)?).ok()?;
        if index >= self.packets.len() {
            return None;
        }
        Some(self.packets.iter().skip(index + 1).filter(move |p| reaches(&p.opts, nsp, rooms, key)).map(|p| &p.packet))
    }

    /// Bytes held (as counted by `store`'s callers).
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }
}

/// Whether a broadcast with `opts` reached a socket of `nsp` in `rooms`
/// (socket.io's `shouldIncludePacket`): all of the namespace or one of its
/// rooms, none of the excepted rooms, and not the excepted client (the
/// sender of `socket.broadcast`, which socket.io names by its own room).
fn reaches(opts: &BroadcastOptions, nsp: &str, rooms: &[String], key: Option<u64>) -> bool {
    opts.nsp == nsp
        && (opts.rooms.is_empty() || opts.rooms.iter().any(|r| rooms.contains(r)))
        && !opts.except.iter().any(|r| rooms.contains(r))
        && (key.is_none() || opts.except_client != key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(max_age_ms: u64, max_bytes: usize) -> RecoveryConfig {
        RecoveryConfig { max_age: Duration::from_millis(max_age_ms), max_bytes }
    }

    fn to(nsp: &str, rooms: &[&str], except: &[&str], except_client: Option<u64>) -> BroadcastOptions {
        BroadcastOptions {
            nsp: nsp.into(),
            rooms: rooms.iter().map(|r| r.to_string()).collect(),
            except: except.iter().map(|r| r.to_string()).collect(),
            except_client,
        }
    }

    /// Stores `name` with its offset appended, as the server does.
    fn put(log: &mut PacketLog<String>, now: Instant, opts: BroadcastOptions, name: &str) -> String {
        let mut offset = String::new();
        log.store(now, opts, |o| {
            offset = o.to_string();
            (format!("{name}@{o}"), 10)
        });
        offset
    }

    fn names<'a>(it: impl Iterator<Item = &'a String>) -> Vec<String> {
        it.map(|s| s.split('@').next().unwrap().to_string()).collect()
    }

    fn rooms(r: &[&str]) -> Vec<String> {
        r.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_session_gets_what_reached_its_rooms_after_its_offset() {
        let now = Instant::now();
        let mut log = PacketLog::new(cfg(60_000, 1 << 20), "pfx");
        let first = put(&mut log, now, to("/", &[], &[], None), "all0");
        put(&mut log, now, to("/", &[], &[], None), "all1");
        put(&mut log, now, to("/", &["r1"], &[], None), "r1");
        put(&mut log, now, to("/", &["r2"], &[], None), "r2");
        put(&mut log, now, to("/", &["sid"], &[], None), "direct");
        put(&mut log, now, to("/", &[], &["r1"], None), "not-r1");
        put(&mut log, now, to("/", &[], &[], Some(7)), "from-me");
        put(&mut log, now, to("/other", &[], &[], None), "other-nsp");
        let mine = rooms(&["sid", "r1"]);
        let got = names(log.missed(&first, "/", &mine, Some(7)).unwrap());
        assert_eq!(got, ["all1", "r1", "direct"]);
        // Another client key: the sender's exclusion does not apply.
        let got = names(log.missed(&first, "/", &mine, Some(8)).unwrap());
        assert_eq!(got, ["all1", "r1", "direct", "from-me"]);
        assert_eq!(first, "pfx0");
    }

    #[test]
    fn unknown_foreign_and_future_offsets_are_not_found() {
        let now = Instant::now();
        let mut log = PacketLog::new(cfg(60_000, 1 << 20), "abc");
        let last = put(&mut log, now, to("/", &[], &[], None), "a");
        assert_eq!(log.missed(&last, "/", &[], None).unwrap().count(), 0);
        for bad in ["", "abc", "abc1", "abc-1", "xyz0", "abc18446744073709551616", "bar"] {
            assert!(log.missed(bad, "/", &[], None).is_none(), "{bad}");
        }
    }

    #[test]
    fn the_byte_bound_drops_the_oldest_and_their_offsets() {
        let now = Instant::now();
        let mut log = PacketLog::new(cfg(60_000, 25), "p");
        let a = put(&mut log, now, to("/", &[], &[], None), "a");
        let b = put(&mut log, now, to("/", &[], &[], None), "b");
        let c = put(&mut log, now, to("/", &[], &[], None), "c");
        assert_eq!(log.bytes(), 20);
        assert!(log.missed(&a, "/", &[], None).is_none());
        assert_eq!(names(log.missed(&b, "/", &[], None).unwrap()), ["c"]);
        assert!(log.missed(&c, "/", &[], None).is_some());
        // One packet larger than the bound is still kept alone.
        let mut small = PacketLog::new(cfg(60_000, 5), "p");
        let only = put(&mut small, now, to("/", &[], &[], None), "big");
        assert!(small.missed(&only, "/", &[], None).is_some());
    }

    #[test]
    fn packets_older_than_the_max_age_go() {
        let t0 = Instant::now();
        let mut log = PacketLog::new(cfg(1_000, 1 << 20), "p");
        let old = put(&mut log, t0, to("/", &[], &[], None), "old");
        let newer = put(&mut log, t0 + Duration::from_millis(600), to("/", &[], &[], None), "newer");
        log.trim(t0 + Duration::from_millis(1_200));
        assert!(log.missed(&old, "/", &[], None).is_none());
        assert_eq!(log.missed(&newer, "/", &[], None).unwrap().count(), 0);
        assert_eq!(log.bytes(), 10);
        log.trim(t0 + Duration::from_millis(1_700));
        assert_eq!(log.bytes(), 0);
        assert!(log.missed(&newer, "/", &[], None).is_none());
    }
}
