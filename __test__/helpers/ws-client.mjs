// A `ws` client wrapped for tests: messages are queued and awaited with
// nextMessage(), the close is a promise, pings/pongs are recorded.
import WebSocket from 'ws'

export { WebSocket }

export class Client {
  constructor (ws) {
    this.ws = ws
    this.messages = []
    this.waiters = []
    this.pings = []
    this.pongs = []
    this.closeInfo = null
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString() }
        this._wake()
        resolve(this.closeInfo)
      })
    })
    ws.on('error', (err) => { this.error = err })
    ws.on('message', (data, isBinary) => {
      this.messages.push({ data: Buffer.isBuffer(data) ? data : Buffer.concat([].concat(data)), isBinary })
      this._wake()
    })
    ws.on('ping', (data) => { this.pings.push(data); this._wake() })
    ws.on('pong', (data) => { this.pongs.push(data); this._wake() })
  }

  _wake () {
    const waiters = this.waiters
    this.waiters = []
    for (const w of waiters) w()
  }

  // Waits until predicate() is truthy; rejects after `timeout` ms or when the
  // connection closes first.
  until (predicate, timeout, what) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== check)
        reject(new Error(`timed out after ${timeout} ms waiting for ${what}`))
      }, timeout)
      const check = () => {
        const value = predicate()
        if (value) {
          clearTimeout(timer)
          resolve(value)
        } else if (this.closeInfo) {
          clearTimeout(timer)
          reject(new Error(`connection closed (${this.closeInfo.code}) while waiting for ${what}`))
        } else {
          this.waiters.push(check)
        }
      }
      check()
    })
  }

  async nextMessage (timeout = 3000) {
    await this.until(() => this.messages.length > 0, timeout, 'a message')
    return this.messages.shift()
  }

  async nextText (timeout = 3000) {
    const m = await this.nextMessage(timeout)
    return m.data.toString()
  }

  send (data, opts) {
    return new Promise((resolve, reject) => this.ws.send(data, opts ?? {}, (err) => err ? reject(err) : resolve()))
  }

  // Ends the connection from the client side (no wait).
  terminate () {
    if (this.ws.readyState !== WebSocket.CLOSED) this.ws.terminate()
  }
}

// Connects and resolves a Client once open; rejects on failure or timeout.
export function connect (url, options = {}, protocols) {
  return new Promise((resolve, reject) => {
    const ws = protocols ? new WebSocket(url, protocols, options) : new WebSocket(url, options)
    const client = new Client(ws)
    const timer = setTimeout(() => {
      ws.terminate()
      reject(new Error(`connect to ${url} timed out`))
    }, options.timeout ?? 3000)
    ws.once('open', () => { clearTimeout(timer); resolve(client) })
    ws.once('error', (err) => { clearTimeout(timer); reject(err) })
    ws.once('unexpected-response', (req, res) => {
      clearTimeout(timer)
      reject(Object.assign(new Error(`unexpected response ${res.statusCode}`), { statusCode: res.statusCode }))
      ws.terminate()
    })
  })
}
