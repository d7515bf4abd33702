'use strict'
const { getSystemErrorMap } = require('node:util')

/**
 * The error a native `listen` threw, in the shape Node gives its own listen
 * failures, so code written for `http.Server` reads it unchanged:
 * `listen EADDRINUSE: address already in use :::3000` with `code`, `errno`
 * (negative, libuv's), `syscall`, `address` and `port`; an unresolvable host
 * is `getaddrinfo ENOTFOUND host` with `hostname` (EAI_AGAIN or EAI_FAIL
 * for other lookup failures).
 *
 * The native error only carries text: an OS error ends with Rust's
 * "(os error N)" (std::io::Error's Display), a failed lookup says "failed
 * to lookup address information". Anything else keeps its text under
 * `code: 'FERROSOCKET_LISTEN_FAILED'`.
 */
function listenError (nativeErr, address, port) {
  const text = String((nativeErr && nativeErr.message) || nativeErr)
  const os = /\(os error (\d+)\)/.exec(text)
  if (os) {
    const errno = -Number(os[1])
    const [code, description] = getSystemErrorMap().get(errno) || ['UNKNOWN', 'unknown error']
    return Object.assign(new Error(`listen ${code}: ${description} ${address}:${port}`),
      { code, errno, syscall: 'listen', address, port })
  }
  const gai = /failed to lookup address information: (.*)/.exec(text)
  if (gai) {
    // getaddrinfo's text (gai_strerror); Node names NONAME and NODATA ENOTFOUND.
    const [errno, code] = /not known|no address/i.test(gai[1])
      ? [-3008, 'ENOTFOUND'] // UV_EAI_NONAME
      : /temporary/i.test(gai[1]) ? [-3001, 'EAI_AGAIN'] : [-3004, 'EAI_FAIL']
    return Object.assign(new Error(`getaddrinfo ${code} ${address}`),
      { errno, code, syscall: 'getaddrinfo', hostname: address })
  }
  return Object.assign(new Error(`ferrosocket: listen ${address}:${port} failed: ${text}`),
    { code: 'FERROSOCKET_LISTEN_FAILED', address, port, cause: nativeErr })
}

module.exports = { listenError }
