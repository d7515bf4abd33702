// A loopback TCP proxy that misbehaves on request, for fault tests: it
// forwards each client connection to `target` and can delay every chunk,
// go silent (a half-open peer: both sockets stay open, nothing passes, no
// FIN, no RST), or reset both sides after a number of client bytes (a
// reset in the middle of a frame). Nothing here needs root or tc/netem.
import net from 'node:net'

/**
 * Starts the proxy on 127.0.0.1:0. `mode` is read for each new connection:
 * `{ delayMs, resetAfter }`; `proxy.silence()` turns every open connection
 * half-open at once. Resolves { port, connections, silence(), close() }.
 */
export async function startFaultProxy (t, target, mode = {}) {
  const pairs = new Set()
  const server = net.createServer((client) => {
    const upstream = net.connect({ host: '127.0.0.1', port: target })
    const pair = { client, upstream, silent: false }
    pairs.add(pair)
    const forget = () => pairs.delete(pair)
    client.on('close', forget)
    for (const s of [client, upstream]) s.on('error', () => {})
    let fromClient = 0
    const pass = (from, to, counted) => from.on('data', (chunk) => {
      if (pair.silent) return
      if (counted && mode.resetAfter !== undefined) {
        const room = mode.resetAfter - fromClient
        fromClient += chunk.length
        if (room <= 0 || chunk.length > room) {
          // Forward up to the limit, then reset both connections.
          if (room > 0) to.write(chunk.subarray(0, room))
          setImmediate(() => { client.resetAndDestroy(); upstream.resetAndDestroy() })
          return
        }
      }
      if (mode.delayMs) setTimeout(() => { if (!pair.silent && !to.destroyed) to.write(chunk) }, mode.delayMs)
      else to.write(chunk)
    })
    pass(client, upstream, true)
    pass(upstream, client, false)
    // A normal close passes through (unless silenced).
    client.on('end', () => { if (!pair.silent) upstream.end() })
    upstream.on('end', () => { if (!pair.silent) client.end() })
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const proxy = {
    port: server.address().port,
    get connections () { return pairs.size },
    /** Every open connection goes half-open: nothing passes either way, nobody closes. */
    silence () { for (const p of pairs) p.silent = true },
    close () {
      for (const p of pairs) { p.client.destroy(); p.upstream.destroy() }
      server.close()
    }
  }
  t.after(() => proxy.close())
  return proxy
}

/** Open file descriptors of this process (Linux). */
export async function openFds () {
  const { readdir } = await import('node:fs/promises')
  return (await readdir('/proc/self/fd')).length
}
