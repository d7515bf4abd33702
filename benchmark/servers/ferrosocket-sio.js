'use strict'
// ferrosocket through its Socket.IO drop-in API (`require('ferrosocket').Server`).
const path = require('node:path')
const { fail } = require('./control')
const { runSioServer } = require('./sio-style')

let lib
try {
  lib = require('../..')
} catch (err) {
  fail(`cannot load ferrosocket: ${err.message}`)
}
if (typeof lib.Server !== 'function') fail('ferrosocket does not export Server (Socket.IO API not built?)')
let version = null
try { version = require(path.join(__dirname, '..', '..', 'package.json')).version } catch {}
try {
  runSioServer(lib.Server, { name: 'ferrosocket-sio', impl: 'ferrosocket-sio', version }, lib)
} catch (err) {
  fail(`ferrosocket Socket.IO API failed: ${err.stack || err}`, err.code)
}
