'use strict'
// Hand-written entry point: re-exports the JS API in lib/. The generated
// loader is binding.js (napi build); never edit that one by hand.
module.exports = require('./lib')
