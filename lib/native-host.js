'use strict'
const { dispatch } = require('./events')
const { reportHandlerError } = require('./util')

// A batch up to this size is written to the host's scratch Buffer.
const SCRATCH_BYTES = 64 * 1024

/**
 * What every owner of a native handle (App, the Socket.IO Server,
 * EngineServer) does alike, once:
 * - `onBatch`, the handle's event callback: decodes a batch (in `scratch`,
 *   or a Buffer of its own when large) into the owner's sink
 *   (lib/events.js), then calls its `endBatch` if it has one;
 *   a throw that escapes it is reported and never returned to N-API;
 * - `busy(yes)`: native handles do not keep Node running, so a ref'd idle
 *   interval does while the owner listens or holds sockets, and not after
 *   (the process exits by itself once the owner is closed);
 * - `scheduleFlush(handle)`: sends that Rust queued (publishes, broadcasts)
 *   are written once per tick, so a burst reaches each socket in one writev.
 */
class NativeHost {
  /** `sink()`: the owner's event handlers, asked for at each batch. */
  constructor (sink) {
    this._keepAlive = null
    this._flushScheduled = false
    // Where Rust writes batches that fit (the usual ones), so a batch costs
    // no Buffer of its own; passed to the handle's constructor. Rust writes
    // it only on this thread, right before calling onBatch with the length.
    this.scratch = Buffer.allocUnsafeSlow(SCRATCH_BYTES)
    const scratch = this.scratch
    this.onBatch = (batch) => {
      const s = sink()
      try {
        if (typeof batch === 'number') dispatch(scratch, s, batch)
        else dispatch(batch, s)
      } catch (err) {
        reportHandlerError(err)
      } finally {
        // The owner's work deferred to the end of the batch, if any.
        if (s.endBatch) s.endBatch()
      }
    }
  }

  busy (yes) {
    if (yes) {
      if (!this._keepAlive) this._keepAlive = setInterval(() => {}, 0x7fffffff)
    } else if (this._keepAlive) {
      clearInterval(this._keepAlive)
      this._keepAlive = null
    }
  }

  scheduleFlush (handle) {
    if (this._flushScheduled) return
    this._flushScheduled = true
    queueMicrotask(() => {
      this._flushScheduled = false
      handle.flush()
    })
  }
}

module.exports = { NativeHost }
