// Shared by the Socket.IO specs: one test per socket.io-client transport
// setting, and a server on port 0 with clients closed after the test.
import { test } from 'node:test'
import { createRequire } from 'node:module'
import { io as ioc } from 'socket.io-client'

const require = createRequire(import.meta.url)
const { Server } = require('../..')

// Each transport setting of socket.io-client: the default (long-polling
// first, then the upgrade), WebSocket only, long-polling only.
export const MODES = [['default', undefined], ['websocket', ['websocket']], ['polling', ['polling']]]

/** A test run once per transport mode; `setup` picks the mode up from `t`. */
export function each (name, opts, fn) {
  for (const [mode, transports] of MODES) {
    test(`${name} [${mode}]`, opts, (t) => {
      t.transports = transports
      return fn(t)
    })
  }
}

/**
 * A Server listening on port 0 with short heartbeats and `opts`, and
 * `client(nsp, options)` making socket.io-clients in the test's mode (no
 * automatic reconnection, so each test says when to reconnect).
 */
export function setup (t, opts = {}) {
  const io = new Server({ pingInterval: 300, pingTimeout: 200, ...opts })
  io.listen(0)
  const clients = []
  const transports = t.transports ? { transports: t.transports } : {}
  const client = (nsp = '/', options = {}) => {
    const c = ioc(`http://127.0.0.1:${io.port}${nsp}`, { ...transports, reconnection: false, forceNew: true, ...options })
    clients.push(c)
    return c
  }
  t.after(() => {
    for (const c of clients) c.close()
    io.close()
  })
  return { io, client }
}

const onceArgs = (emitter, event) => new Promise((resolve) => emitter.once(event, (...args) => resolve(args)))

/** A WebSocket-only socket.io-client on `port`, closed after the test. */
export function wsClient (t, port, opts = {}) {
  const c = ioc(`http://127.0.0.1:${port}`, { transports: ['websocket'], reconnection: false, forceNew: true, ...opts })
  t.after(() => c.close())
  return c
}

/** The server-side socket of client `c`, once both sides see the connection. */
export async function connected (io, c) {
  const [[socket]] = await Promise.all([onceArgs(io, 'connection'), onceArgs(c, 'connect')])
  return socket
}
