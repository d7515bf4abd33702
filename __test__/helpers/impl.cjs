'use strict'
// The implementation under test. By default the ferrosocket package at the
// repo root; FERRO_IMPL=<path to uWebSockets.js> runs the same specs against
// the reference implementation, which is how the specs themselves are checked.
module.exports = process.env.FERRO_IMPL ? require(process.env.FERRO_IMPL) : require('../..')
