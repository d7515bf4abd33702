// Starts an App (or SSLApp) on 127.0.0.1, port 0, with one ws route.
import uWS from './impl.cjs'

export { uWS }

// behavior: the app.ws() behavior, or null for no ws route.
// options: pattern (default '/*'), ssl (SSLApp options; plain App when
// absent), host (default '127.0.0.1'), setup(app) to add routes before listen.
// Resolves { app, port, listenSocket, close } ; close() is idempotent and
// closes the listen socket and every connection (app.close()).
export async function startApp (behavior, { pattern = '/*', ssl, host = '127.0.0.1', setup, options } = {}) {
  const app = ssl ? uWS.SSLApp({ ...ssl, ...options }) : options === undefined ? uWS.App() : uWS.App(options)
  if (behavior) app.ws(pattern, behavior)
  if (setup) setup(app)
  const listenSocket = await new Promise((resolve) => app.listen(host, 0, resolve))
  if (!listenSocket) throw new Error(`listen on ${host}:0 failed`)
  const port = uWS.us_socket_local_port(listenSocket)
  let closed = false
  return {
    app,
    port,
    listenSocket,
    close () {
      if (closed) return
      closed = true
      app.close()
    }
  }
}

// Upgrade handler that accepts every request with `userData` (object or
// function of (req) returning one), passing the client's headers through.
export function acceptWith (userData = {}) {
  return (res, req, context) => {
    const data = typeof userData === 'function' ? userData(req) : userData
    res.upgrade(
      data,
      req.getHeader('sec-websocket-key'),
      req.getHeader('sec-websocket-protocol'),
      req.getHeader('sec-websocket-extensions'),
      context
    )
  }
}

export const text = (arrayBuffer) => Buffer.from(arrayBuffer).toString()

// Copies an ArrayBuffer handed to a handler: uWS.js detaches (neuters) it
// when the handler returns, so anything kept for later must be copied.
export const copy = (arrayBuffer) => Buffer.from(new Uint8Array(arrayBuffer))

// Records server-side events so a test can await them:
//   const log = new EventLog()
//   startApp({ open: log.on('open'), close: log.on('close', (ws, code, msg) => ({ code, msg: text(msg) })) })
//   const [e] = await log.wait('close')
// Each recorded event is { type, ws, ...extra }.
export class EventLog {
  constructor () {
    this.events = []
    this.waiters = []
  }

  // Returns a handler that records `type`; `extract` maps the handler's
  // arguments to extra fields (it runs inside the handler, so it may read
  // ArrayBuffers), and `then` runs after recording.
  on (type, extract = () => ({}), then) {
    return (ws, ...args) => {
      this.push(type, { ws, ...extract(ws, ...args) })
      if (then) return then(ws, ...args)
    }
  }

  push (type, fields = {}) {
    this.events.push({ type, ...fields })
    const waiters = this.waiters
    this.waiters = []
    for (const w of waiters) w()
  }

  of (type) {
    return this.events.filter((e) => e.type === type)
  }

  // Resolves with the events of `type` once at least `count` exist.
  wait (type, { count = 1, timeout = 3000 } = {}) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== check)
        reject(new Error(`timed out after ${timeout} ms waiting for ${count} '${type}' event(s); got ${this.of(type).length}`))
      }, timeout)
      const check = () => {
        const found = this.of(type)
        if (found.length >= count) {
          clearTimeout(timer)
          resolve(found)
        } else {
          this.waiters.push(check)
        }
      }
      check()
    })
  }
}
