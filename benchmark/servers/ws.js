'use strict'
// The `ws` package (the root devDependency, not uws-js-unofficial's copy),
// default options. No topics in ws: broadcast loops over wss.clients,
// stringifying each message once (the ws README's broadcast example).
const fs = require('node:fs')
const http = require('node:http')
const https = require('node:https')
const { WebSocketServer, WebSocket } = require('ws')
const { serve, parseServerArgs } = require('./control')

const { tls } = parseServerArgs()
const stats = { open: 0, opened: 0, closed: 0 }
const server = tls
  ? https.createServer({ cert: fs.readFileSync(tls.cert), key: fs.readFileSync(tls.key) })
  : http.createServer()
const wss = new WebSocketServer({ server, maxPayload: 16 * 1024 })
wss.on('connection', (ws) => {
  stats.open++
  stats.opened++
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }))
  ws.on('close', () => { stats.open--; stats.closed++ })
})
const broadcast = (msgs) => {
  for (const m of msgs) {
    const data = JSON.stringify(m)
    for (const client of wss.clients) {
      if (client.readyState === WebSocket.OPEN) client.send(data)
    }
  }
  return wss.clients.size
}
server.listen(0, '127.0.0.1', () => {
  serve({ name: 'ws', impl: 'ws', version: require('ws/package.json').version, port: server.address().port, tls: !!tls },
    stats, () => { wss.close(); server.close() }, { broadcast })
})
