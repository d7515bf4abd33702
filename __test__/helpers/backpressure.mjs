// Drives a server-side ws into backpressure against a peer that has stopped
// reading (a RawClient whose socket is paused).

// Sends numbered binary chunks synchronously until send() returns 2
// (dropped) or `maxSends` is reached. Each chunk starts with its sequence
// number (uint32 BE) so the receiver can tell which ones arrived. Returns
// [{ seq, status, buffered }] with getBufferedAmount() after each send.
export function sendUntilDropped (ws, { chunkSize = 16 * 1024, maxSends = 20000, stopAfterDrops = 1 } = {}) {
  const results = []
  let drops = 0
  for (let seq = 0; seq < maxSends && drops < stopAfterDrops; seq++) {
    const chunk = Buffer.alloc(chunkSize, seq & 0xff)
    chunk.writeUInt32BE(seq)
    const status = ws.send(chunk, true)
    results.push({ seq, status, buffered: ws.getBufferedAmount() })
    if (status === 2) drops++
  }
  return results
}

// Queues one message far larger than the kernel socket buffers can hold
// (8 MiB by default), so a peer that has stopped reading keeps
// getBufferedAmount() high for as long as it stays paused. A single send
// is accepted whatever its size when nothing is buffered yet.
export function stall (ws, bytes = 8 * 1024 * 1024) {
  return ws.send(Buffer.alloc(bytes, 0x2a), true)
}
