//! The connection registry: a slot per connection, reserved when its
//! handshake starts, and the ids the layer above holds.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;
use slab::Slab;

use super::conn::Conn;

struct Slot {
    gen: u32,
    conn: Option<Arc<Conn>>,
}

/// Ids handed to JS: slab key in the low 32 bits, a 21-bit generation above
/// it, so a stale handle never reaches a connection that reused the slot
/// (and the id stays an exact JS number).
fn make_id(key: usize, gen: u32) -> u64 {
    ((gen as u64) << 32) | key as u64
}
fn split_id(id: u64) -> (usize, u32) {
    ((id & 0xffff_ffff) as usize, (id >> 32) as u32)
}

pub(crate) struct Registry {
    slots: RwLock<Slab<Slot>>,
    next_gen: AtomicU32,
}

impl Default for Registry {
    fn default() -> Self {
        Self { slots: RwLock::new(Slab::new()), next_gen: AtomicU32::new(1) }
    }
}

impl Registry {
    /// Slots taken, handshakes in progress included (the connection cap).
    pub(crate) fn len(&self) -> usize {
        self.slots.read().len()
    }

    pub(crate) fn reserve(&self) -> u64 {
        let gen = self.next_gen.fetch_add(1, Ordering::Relaxed) & 0x1f_ffff;
        let key = self.slots.write().insert(Slot { gen, conn: None });
        make_id(key, gen)
    }

    pub(crate) fn release(&self, id: u64) {
        let (key, gen) = split_id(id);
        let mut slots = self.slots.write();
        if slots.get(key).is_some_and(|s| s.gen == gen) {
            slots.remove(key);
        }
    }

    /// Releases a handshake's slot unless a connection took it over.
    pub(crate) fn release_unless_taken(&self, id: u64) {
        let (key, gen) = split_id(id);
        let mut slots = self.slots.write();
        if slots.get(key).is_some_and(|s| s.gen == gen && s.conn.is_none()) {
            slots.remove(key);
        }
    }

    /// Puts the connection in its reserved slot; false when the slot is gone.
    pub(crate) fn fill(&self, conn: &Arc<Conn>) -> bool {
        let (key, gen) = split_id(conn.id);
        match self.slots.write().get_mut(key) {
            Some(s) if s.gen == gen => {
                s.conn = Some(conn.clone());
                true
            }
            _ => false,
        }
    }

    pub(crate) fn get(&self, id: u64) -> Option<Arc<Conn>> {
        let (key, gen) = split_id(id);
        let slots = self.slots.read();
        let slot = slots.get(key)?;
        if slot.gen != gen {
            return None;
        }
        slot.conn.clone()
    }

    pub(crate) fn snapshot(&self) -> Vec<Arc<Conn>> {
        self.slots.read().iter().filter_map(|(_, s)| s.conn.clone()).collect()
    }

    pub(crate) fn connection_count(&self) -> usize {
        self.slots.read().iter().filter(|(_, s)| s.conn.is_some()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_stay_exact_in_js_numbers() {
        let id = make_id(123_456, 0x1f_ffff);
        assert_eq!(split_id(id), (123_456, 0x1f_ffff));
        assert!(id < (1u64 << 53));
    }
}
