'use strict'
// The `ws` package (the root devDependency, not uws-js-unofficial's copy),
// default options. No topics in ws: broadcast loops over wss.clients,
// stringifying each message once (the ws README's broadcast example).
const fs = require('node:fs')
const http = require('node:http')
const https = require('node:https')
const { WebSocketServer, WebSocket } = require('ws')
const { serve, parseServerArgs } = require('./control')

const { tls, compress } = parseServerArgs()
const stats = { open: 0, opened: 0, closed: 0, requests: 0 }
// The http scenario: Node's own HTTP server answering a small JSON (keep-alive).
const onRequest = (req, res) => {
  if (req.url !== '/json') {
    res.statusCode = 404
    return res.end()
  }
  res.setHeader('Content-Type', 'application/json')
  res.end(JSON.stringify({ hello: 'world', n: ++stats.requests }))
}
const server = tls
  ? https.createServer({ cert: fs.readFileSync(tls.cert), key: fs.readFileSync(tls.key) }, onRequest)
  : http.createServer(onRequest)
// --compress: ws's perMessageDeflate with its defaults (threshold 1 KiB, context kept).
const wss = new WebSocketServer({ server, maxPayload: 16 * 1024, perMessageDeflate: compress })
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
