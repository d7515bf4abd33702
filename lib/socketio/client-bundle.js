'use strict'
const fs = require('node:fs')
const path = require('node:path')

// The browser client is served from the socket.io-client package installed
// beside us, as socket.io serves its own copy of the same files.
const DIST = path.join(path.dirname(require.resolve('socket.io-client/package.json')), 'dist')
const VERSION = require('socket.io-client/package.json').version
const ETAG = `"${VERSION}"`
const WEAK_ETAG = `W/${ETAG}`

/** `{path}/socket.io[.msgpack|.esm][.min].js[.map]`, query allowed. */
function match (prefix, url) {
  const q = url.indexOf('?')
  const p = q < 0 ? url : url.slice(0, q)
  if (!p.startsWith(prefix + '/')) return null
  const name = p.slice(prefix.length + 1)
  return /^socket\.io(\.msgpack|\.esm)?(\.min)?\.js(\.map)?$/.test(name) ? name : null
}

/**
 * Answers a request for the client bundle (true), or leaves it (false).
 * ETag is the client version; a matching If-None-Match gets 304.
 */
function serveClient (prefix, req, res) {
  if (req.method !== 'GET' && req.method !== 'HEAD') return false
  const name = match(prefix, req.url)
  if (!name) return false
  const etag = req.headers['if-none-match']
  if (etag === ETAG || etag === WEAK_ETAG) {
    res.writeHead(304)
    res.end()
    return true
  }
  const file = path.join(DIST, name)
  fs.stat(file, (err, st) => {
    if (err) {
      res.writeHead(404)
      res.end()
      return
    }
    res.writeHead(200, {
      'Cache-Control': 'public, max-age=0',
      'Content-Type': `application/${name.endsWith('.map') ? 'json' : 'javascript'}; charset=utf-8`,
      'Content-Length': st.size,
      ETag: ETAG
    })
    if (req.method === 'HEAD') return res.end()
    fs.createReadStream(file).on('error', () => res.destroy()).pipe(res)
  })
  return true
}

module.exports = { serveClient }
