'use strict'
// ferrosocket through its uWebSockets.js-compatible core API.
const path = require('node:path')
const { fail } = require('./control')
const { runUwsStyleServer } = require('./uws-style')

let lib
try {
  lib = require('../..')
} catch (err) {
  fail(`cannot load ferrosocket: ${err.message}`)
}
for (const fn of ['App', 'SSLApp', 'us_listen_socket_close', 'us_socket_local_port']) {
  if (typeof lib[fn] !== 'function') {
    fail(`ferrosocket does not export ${fn}() yet (core API not built?)`)
  }
}
let version = null
try { version = require(path.join(__dirname, '..', '..', 'package.json')).version } catch {}
try {
  runUwsStyleServer(lib, { name: 'ferrosocket-core', impl: 'ferrosocket-core', version })
} catch (err) {
  fail(`ferrosocket core API failed: ${err.stack || err}`)
}
