'use strict'
const { TYPE } = require('./packet')
const { safeCall } = require('../util')

/**
 * What a BroadcastOperator does when its namespace has a custom adapter
 * (socket.io-adapter compatible: Redis, cluster…): socket.io's own
 * BroadcastOperator, calling the adapter with socket.io's packet and
 * options. The adapter finds the sockets and writes to them
 * (`socket.client.writeToEngine`), here and on the other nodes.
 */

/** socket.io's `BroadcastOptions`. */
function options (op) {
  return { rooms: op.rooms, except: op.exceptRooms, flags: op.flags }
}

function emit (op, nsp, data) {
  nsp.adapter.broadcast({ type: TYPE.EVENT, data, nsp: nsp.name }, options(op))
}

/**
 * With an ack: done when every server has said how many clients it reached
 * and that many answered, or at the timeout with the answers so far.
 */
function emitWithAck (op, nsp, data, ack) {
  const single = op.flags.expectSingleResponse
  const responses = []
  let timedOut = false
  let expectedServers = -1
  let servers = 0
  let expectedClients = 0
  const timer = setTimeout(() => {
    timedOut = true
    safeCall(ack, op, new Error('operation has timed out'), single ? null : responses)
  }, op.flags.timeout)
  const check = () => {
    if (timedOut || expectedServers !== servers || responses.length !== expectedClients) return
    clearTimeout(timer)
    timedOut = true
    safeCall(ack, op, null, single ? responses[0] : responses)
  }
  nsp.adapter.broadcastWithAck({ type: TYPE.EVENT, data, nsp: nsp.name }, options(op), (clientCount) => {
    expectedClients += clientCount
    servers++
    check()
  }, (response) => {
    responses.push(response)
    check()
  })
  Promise.resolve(nsp.adapter.serverCount()).then((count) => {
    expectedServers = count
    check()
  }, () => {
    expectedServers = servers
    check()
  })
}

/** Sockets of this node as they are; others as details, for `remote(details)` to wrap. */
async function fetchSockets (op, nsp, remote) {
  const sockets = await nsp.adapter.fetchSockets(options(op))
  return sockets.map((s) => (s && s.server ? s : remote(s)))
}

/** The ids of the sockets in `op.rooms` (socket.io ignores the exceptions here). */
async function allSockets (op, targets) {
  const out = new Set()
  for (const nsp of targets) for (const id of await nsp.adapter.sockets(op.rooms)) out.add(id)
  return out
}

function socketsJoin (op, targets, rooms) {
  for (const nsp of targets) nsp.adapter.addSockets(options(op), rooms)
}

function socketsLeave (op, targets, rooms) {
  for (const nsp of targets) nsp.adapter.delSockets(options(op), rooms)
}

function disconnectSockets (op, targets, close) {
  for (const nsp of targets) nsp.adapter.disconnectSockets(options(op), close)
}

module.exports = { emit, emitWithAck, fetchSockets, allSockets, socketsJoin, socketsLeave, disconnectSockets }
