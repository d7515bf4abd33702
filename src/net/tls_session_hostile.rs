//! Hostile peers against the settled record layer (a client holding its
//! own keys crafts records rustls's client would never send).
use std::io::Write;

use crate::net::tls_peer::{handshake, settled, to_client, to_server, Forge};

/// A client that asks for key updates and never reads must not grow the
/// session's pending output by one KeyUpdate record per request: answers
/// are coalesced, and a 33rd KeyUpdate without application data in
/// between is refused (as rustls does).
#[test]
fn a_flood_of_key_update_requests_queues_nothing_and_is_refused() {
    // rustls (before settle): refused.
    let (mut s, mut c) = handshake(false);
    for _ in 0..100 {
        c.refresh_traffic_keys().unwrap();
    }
    assert!(to_server(&mut s, &mut c).is_err(), "rustls refuses the flood");

    // Records (after settle).
    let (mut s, mut c) = settled(false);
    for _ in 0..2000 {
        c.refresh_traffic_keys().unwrap();
    }
    assert!(to_server(&mut s, &mut c).is_err(), "refused");
    assert!(s.pending_len() < 100, "pending {} B after 2000 requests", s.pending_len());
}

/// After a fatal error nothing more is sealed (`mark_closed`'s flush would
/// send queued frames after our fatal alert), on either engine.
#[test]
fn nothing_is_sealed_after_a_fatal_alert() {
    let (mut s, _c) = settled(false);
    let mut bad = [23u8, 3, 3, 0, 20, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20];
    assert!(s.read(&mut bad, &mut Vec::new()).is_err());
    assert!(s.pending_len() > 0, "the alert is queued");
    let after = s.encrypt(b"frame after the alert");
    // rustls's engine (TLS 1.2, before settle) too: its unbuffered state
    // still offers WriteTraffic after the error.
    let (mut r, _c2) = handshake(false);
    assert!(r.read(&mut bad, &mut Vec::new()).is_err());
    let rustls_after = r.encrypt(b"x");
    assert!(after.is_err() && rustls_after.is_err(), "data sealed after a fatal alert");
}

/// TLSInnerPlaintext over 2^14 + 1 (RFC 8446 5.4) is
/// accepted when the excess is padding; rustls refuses it (record_overflow).
/// Also: unlimited empty records and user_canceled warnings (rustls: 32, 4).
#[test]
fn padding_past_the_limit_and_floods_of_empty_records_or_warnings_are_refused() {
    let (mut s, c) = settled(true);
    let mut f = Forge::from(c);
    let mut wire = Vec::new();
    f.seal(23, &[b'a'; 16384], 200, &mut wire);
    let over = s.read(&mut wire, &mut Vec::new());

    let (mut s, c) = settled(true);
    let mut f = Forge::from(c);
    let mut wire = Vec::new();
    for _ in 0..1000 {
        f.seal(23, &[], 0, &mut wire);
        f.seal(21, &[1, 90], 0, &mut wire);
    }
    let flood = s.read(&mut wire, &mut Vec::new());
    assert!(over.is_err() && flood.is_err());
}

/// `settle` right after rustls followed a client's KeyUpdate
/// (update_requested), before anything was encrypted, would lose the
/// answer rustls holds (outside `sendable_tls`, which is all
/// `dangerous_into_kernel_connection` checks) while its send key moved:
/// the hand-over waits for a write.
#[test]
fn no_hand_over_while_rustls_holds_a_key_update_answer() {
    let (mut s, mut c) = handshake(false);
    c.refresh_traffic_keys().unwrap();
    c.writer().write_all(b"GET / ...").unwrap();
    assert_eq!(to_server(&mut s, &mut c).unwrap(), b"GET / ...");
    assert_eq!(s.pending_len(), 0, "rustls holds its KeyUpdate for the next write");
    s.settle();
    s.encrypt(b"HTTP/1.1 101").unwrap();
    let got = to_client(&mut s, &mut c);
    assert_eq!(got.unwrap(), b"HTTP/1.1 101");
}

/// With the fix: requests are answered once, before our next data.
#[test]
fn key_update_requests_are_answered_once_before_our_next_data() {
    let (mut s, mut c) = settled(false);
    for _ in 0..20 {
        c.refresh_traffic_keys().unwrap();
    }
    c.writer().write_all(b"data").unwrap();
    assert_eq!(to_server(&mut s, &mut c).unwrap(), b"data");
    assert_eq!(s.pending_len(), 0, "nothing queued for a peer that only asks");
    s.encrypt(b"answer").unwrap();
    assert_eq!(to_client(&mut s, &mut c).unwrap(), b"answer");
    // And it goes on both ways.
    c.refresh_traffic_keys().unwrap();
    c.writer().write_all(b"more").unwrap();
    assert_eq!(to_server(&mut s, &mut c).unwrap(), b"more");
    s.encrypt(b"again").unwrap();
    assert_eq!(to_client(&mut s, &mut c).unwrap(), b"again");
}
