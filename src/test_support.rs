//! Raw-socket client helpers shared by the Rust tests that talk to a real
//! server over loopback.

use std::io::Read;
use std::net::TcpStream;

use crate::ws::frame::{self, OpCode};

pub(crate) fn read_head(s: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut b).unwrap();
        head.push(b[0]);
    }
    String::from_utf8(head).unwrap()
}

pub(crate) fn client_frame(opcode: OpCode, fin: bool, payload: &[u8]) -> Vec<u8> {
    let mask = [0x11, 0x22, 0x33, 0x44];
    let mut hdr = [0u8; 14];
    let n = frame::encode_header_masked(opcode, fin, payload.len(), mask, &mut hdr);
    let mut out = hdr[..n].to_vec();
    let mut body = payload.to_vec();
    frame::apply_mask(&mut body, mask, 0);
    out.extend_from_slice(&body);
    out
}

/// Reads one unmasked server frame: (opcode byte, payload).
pub(crate) fn read_frame(s: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut h = [0u8; 2];
    s.read_exact(&mut h).unwrap();
    let len = match h[1] & 0x7f {
        126 => {
            let mut b = [0u8; 2];
            s.read_exact(&mut b).unwrap();
            u16::from_be_bytes(b) as usize
        }
        127 => {
            let mut b = [0u8; 8];
            s.read_exact(&mut b).unwrap();
            u64::from_be_bytes(b) as usize
        }
        n => n as usize,
    };
    assert_eq!(h[1] & 0x80, 0, "server frames are never masked");
    let mut p = vec![0u8; len];
    s.read_exact(&mut p).unwrap();
    (h[0] & 0x0f, p)
}
