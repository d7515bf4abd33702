'use strict'
const fs = require('node:fs')
const path = require('node:path')
const zlib = require('node:zlib')
const { pipeline } = require('node:stream')

// The browser client is served from the socket.io-client package installed
// beside us, as socket.io serves its own copy of the same files.
const DIST = path.join(path.dirname(require.resolve('socket.io-client/package.json')), 'dist')
const FILES = new Set(fs.readdirSync(DIST))
const VERSION = require('socket.io-client/package.json').version
const ETAG = `"${VERSION}"`
const WEAK_ETAG = `W/${ETAG}`

/** The client already has this version (If-None-Match): 304. */
const fresh = (ifNoneMatch) => ifNoneMatch === ETAG || ifNoneMatch === WEAK_ETAG

const contentType = (name) => `application/${name.endsWith('.map') ? 'json' : 'javascript'}; charset=utf-8`

/**
 * The bundle file a request names (`{path}/socket.io[.msgpack|.esm][.min].js[.map]`,
 * query allowed, one the client package ships), or null: anything else
 * under the path is the engine's to answer (400, as in socket.io).
 */
function clientFile (prefix, req) {
  if (req.method !== 'GET' && req.method !== 'HEAD') return null
  const url = req.url
  const q = url.indexOf('?')
  const p = q < 0 ? url : url.slice(0, q)
  if (!p.startsWith(prefix + '/')) return null
  const name = p.slice(prefix.length + 1)
  return /^socket\.io(\.msgpack|\.esm)?(\.min)?\.js(\.map)?$/.test(name) && FILES.has(name) ? name : null
}

const ENCODINGS = ['br', 'gzip', 'deflate']

/**
 * The encoding to send, as socket.io picks it (`accepts(req).encodings`,
 * i.e. negotiator): among br, gzip and deflate the client accepts (q > 0),
 * the highest q, then a named one over `*`, then the client's order, then
 * ours; none when it accepts none of them.
 */
function encodingFor (header) {
  if (!header) return null
  const entries = new Map()
  String(header).split(',').forEach((part, order) => {
    const [name, ...params] = part.trim().toLowerCase().split(';')
    if (!name || entries.has(name)) return
    const qp = params.map((x) => x.trim()).find((x) => x.startsWith('q='))
    const q = qp ? Number(qp.slice(2)) : 1
    entries.set(name, { q: Number.isFinite(q) ? q : 0, order })
  })
  const candidates = []
  ENCODINGS.forEach((enc, i) => {
    const exact = entries.get(enc)
    const e = exact || entries.get('*')
    if (e && e.q > 0) candidates.push({ enc, q: e.q, s: exact ? 1 : 0, o: e.order, i })
  })
  candidates.sort((a, b) => (b.q - a.q) || (b.s - a.s) || (a.o - b.o) || (a.i - b.i))
  return candidates.length ? candidates[0].enc : null
}

/**
 * Sends bundle file `name` (from clientFile): ETag is the client version, a
 * matching If-None-Match gets 304, the body is compressed as the client
 * accepts (br, gzip, deflate), as socket.io serves it.
 */
function sendClient (name, req, res) {
  if (fresh(req.headers['if-none-match'])) {
    res.writeHead(304)
    res.end()
    return
  }
  const headers = {
    'Cache-Control': 'public, max-age=0',
    'Content-Type': contentType(name),
    ETag: ETAG
  }
  const encoding = encodingFor(req.headers['accept-encoding'])
  if (encoding) headers['Content-Encoding'] = encoding
  res.writeHead(200, headers)
  if (req.method === 'HEAD') return res.end()
  const file = fs.createReadStream(path.join(DIST, name))
  const onError = (err) => { if (err) res.destroy() }
  if (encoding === 'br') pipeline(file, zlib.createBrotliCompress(), res, onError)
  else if (encoding === 'gzip') pipeline(file, zlib.createGzip(), res, onError)
  else if (encoding === 'deflate') pipeline(file, zlib.createDeflate(), res, onError)
  else pipeline(file, res, onError)
}

/**
 * The bundle on an App (attachApp), as socket.io serves it on uWebSockets.js:
 * `{path}/socket.io*` files the client package ships, uncompressed, with the
 * ETag and 304; 404 for other names there (the engine has everything else
 * under the path).
 */
function serveClientOnApp (app, prefix) {
  const cache = new Map()
  app.get(`${prefix}/socket.io*`, (res, req) => {
    const name = clientFile(prefix, { method: 'GET', url: req.getUrl() })
    if (!name) return res.writeStatus('404 Not Found').end()
    if (fresh(req.getHeader('if-none-match'))) return res.writeStatus('304 Not Modified').end()
    if (!cache.has(name)) cache.set(name, fs.readFileSync(path.join(DIST, name)))
    res.writeHeader('cache-control', 'public, max-age=0')
    res.writeHeader('content-type', contentType(name))
    res.writeHeader('etag', ETAG)
    res.end(cache.get(name))
  })
}

module.exports = { clientFile, sendClient, serveClientOnApp }
