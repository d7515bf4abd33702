'use strict'
const { once, safeApply } = require('../util')

/**
 * socket.io's middleware chain, for `io.use`/`nsp.use` (arg: the socket) and
 * `socket.use` (arg: the packet's `[event, ...args]`): each `fn(arg, next)`
 * in turn, on the list as it was at the start (as socket.io runs it), then
 * `done()`; `next(err)` stops the chain with `done(err, false)`.
 * A middleware that throws or rejects before calling `next` is reported
 * (FERROSOCKET_HANDLER_ERROR) and stops the chain with `done(err, true)`;
 * socket.io lets the throw escape, and a rejection would leave the client
 * waiting for ever. Each `next` counts once: a second call, or one after the
 * middleware failed, is ignored (one outcome per step, one report per error).
 */
function runMiddleware (fns, arg, done) {
  const list = fns.slice()
  const step = (i) => {
    if (i === list.length) return done()
    // One outcome per step: next(), next(err), or the middleware failing.
    const outcome = once((err, failed) => (err || failed ? done(err, failed) : step(i + 1)))
    safeApply(list[i], undefined, [arg, (err) => outcome(err, false)], (err) => outcome(err, true))
  }
  step(0)
}

module.exports = { runMiddleware }
