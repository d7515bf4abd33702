'use strict'
// The `ws` package (the root devDependency, not uws-js-unofficial's copy),
// default options: a sanity-check peer for the memory scenario.
const { WebSocketServer } = require('ws')
const { serve } = require('./control')

const stats = { open: 0, opened: 0, closed: 0 }
const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, maxPayload: 16 * 1024 })
wss.on('connection', (ws) => {
  stats.open++
  stats.opened++
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }))
  ws.on('close', () => { stats.open--; stats.closed++ })
})
wss.on('listening', () => {
  serve({ name: 'ws', impl: 'ws', version: require('ws/package.json').version, port: wss.address().port },
    stats, () => wss.close())
})
