'use strict'
const binding = require('../binding.js')

module.exports = { version: binding.version }
