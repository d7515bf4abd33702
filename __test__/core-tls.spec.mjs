// SSLApp: wss with the self-signed fixture certificate (see
// fixtures/README.md), passphrase-protected keys, and the errors for bad
// key/cert input.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import tls from 'node:tls'
import { X509Certificate } from 'node:crypto'
import { startApp, uWS, text, EventLog } from './helpers/app.mjs'
import { connect } from './helpers/ws-client.mjs'
import { rawRequest, upgradeRequest, encodeFrame, decodeFrame, OP } from './helpers/raw-client.mjs'
import { ferroOnly, withTimeout } from './helpers/env.mjs'
import { runChild } from './helpers/child.mjs'
import { fixture, KEY, CERT, ENCRYPTED_KEY, PASSPHRASE, ca } from './helpers/tls-fixtures.mjs'


async function wssEcho (t, ssl) {
  const log = new EventLog()
  const server = await startApp({
    maxPayloadLength: 1024 * 1024,
    open: (ws) => log.push('open', { address: text(ws.getRemoteAddressAsText()) }),
    message: (ws, message, isBinary) => { ws.send(message, isBinary) },
    close: log.on('close', (ws, code) => ({ code }))
  }, { ssl })
  t.after(() => server.close())
  return { ...server, log }
}

test('SSLApp with key_file_name/cert_file_name: wss echo of text and 256 KiB binary, verified against the fixture CA', { timeout: 15000 }, async (t) => {
  const { port, log } = await wssEcho(t, { key_file_name: KEY, cert_file_name: CERT })
  for (const host of ['localhost', '127.0.0.1']) {
    const client = await connect(`wss://${host}:${port}/`, { ca })
    t.after(() => client.terminate())
    await client.send(`secure hello via ${host}`)
    assert.equal(await client.nextText(), `secure hello via ${host}`)
    const big = Buffer.alloc(256 * 1024)
    for (let i = 0; i < big.length; i++) big[i] = (i * 13) & 0xff
    await client.send(big, { binary: true })
    const reply = await client.nextMessage(5000)
    assert.equal(reply.isBinary, true)
    assert.ok(reply.data.equals(big))
    client.ws.close(1000)
    assert.equal((await client.closed).code, 1000)
  }
  const opens = await log.wait('open', { count: 2 })
  assert.equal(opens[0].address, '127.0.0.1')
})

test('the certificate served is the fixture certificate', { timeout: 10000 }, async (t) => {
  const { port } = await wssEcho(t, { key_file_name: KEY, cert_file_name: CERT })
  const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca })
  t.after(() => socket.destroy())
  await new Promise((resolve, reject) => { socket.once('secureConnect', resolve); socket.once('error', reject) })
  assert.equal(socket.authorized, true)
  assert.equal(socket.getPeerX509Certificate().fingerprint256, new X509Certificate(ca).fingerprint256)
})

test('new SSLApp() works too; rejectUnauthorized: false client connects', { timeout: 10000 }, async (t) => {
  const app = new uWS.SSLApp({ key_file_name: KEY, cert_file_name: CERT })
  app.ws('/*', { message: (ws, message) => { ws.send(message) } })
  const listenSocket = await new Promise((resolve) => app.listen('127.0.0.1', 0, resolve))
  t.after(() => app.close())
  assert.ok(listenSocket)
  const client = await connect(`wss://127.0.0.1:${uWS.us_socket_local_port(listenSocket)}/`, { rejectUnauthorized: false })
  t.after(() => client.terminate())
  await client.send('constructed with new')
  assert.equal(await client.nextText(), 'constructed with new')
})

test('a wss reader that pauses gets every byte of a 12.8 MB burst, in order', { timeout: 30000 }, async (t) => {
  const COUNT = 200
  const SIZE = 64 * 1024
  const body = (i) => Buffer.alloc(SIZE, i & 0xff).fill(`#${i}#`, 0, 8)
  let buffered = -1
  const server = await startApp({
    maxBackpressure: 64 * 1024 * 1024,
    maxPayloadLength: 1024 * 1024,
    open: (ws) => {
      for (let i = 0; i < COUNT; i++) ws.send(body(i), true)
      buffered = ws.getBufferedAmount()
    }
  }, { ssl: { key_file_name: KEY, cert_file_name: CERT } })
  t.after(() => server.close())
  const client = await connect(`wss://localhost:${server.port}/`, { ca })
  t.after(() => client.terminate())
  client.ws._socket.pause()
  await new Promise((resolve) => setTimeout(resolve, 500))
  // The kernel took what it could; the rest waited in the server.
  assert.ok(buffered > 0, `buffered after the burst: ${buffered}`)
  client.ws._socket.resume()
  await client.until(() => client.messages.length >= COUNT, 20000, `${COUNT} messages`)
  client.messages.forEach((m, i) => assert.ok(m.data.equals(body(i)), `message ${i} intact and in order`))
})

test('frames sent in the same TLS write as the upgrade request are read',
  { timeout: 10000, skip: ferroOnly('uWS.js drops frames sent before its 101 (RFC 6455 4.1 has clients wait for it); ferrosocket reads them, as on plain TCP') }, async (t) => {
    const { port } = await wssEcho(t, { key_file_name: KEY, cert_file_name: CERT })
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca })
    t.after(() => socket.destroy())
    await new Promise((resolve, reject) => { socket.once('secureConnect', resolve); socket.once('error', reject) })
    // The second frame is larger than the server's first read of the head,
    // so part of it is still decrypted but unread when the 101 goes out.
    const two = 'two'.padEnd(10000, '.')
    socket.write(Buffer.concat([Buffer.from(upgradeRequest()), encodeFrame(OP.TEXT, 'one'), encodeFrame(OP.TEXT, two)]))
    let got = Buffer.alloc(0)
    let texts = []
    await withTimeout(new Promise((resolve) => {
      socket.on('data', (d) => {
        got = Buffer.concat([got, d])
        const end = got.indexOf('\r\n\r\n')
        if (end < 0) return
        assert.match(got.subarray(0, end).toString(), /^HTTP\/1\.1 101/)
        let rest = got.subarray(end + 4)
        texts = []
        for (let f = decodeFrame(rest); f; f = decodeFrame(rest)) {
          texts.push(f.frame.payload.toString())
          rest = rest.subarray(f.size)
        }
        if (texts.length >= 2) resolve()
      })
    }), 5000, 'two echoes')
    assert.deepEqual(texts, ['one', two])
  })

test('encrypted key with the right passphrase', { timeout: 10000 }, async (t) => {
  const { port } = await wssEcho(t, { key_file_name: ENCRYPTED_KEY, cert_file_name: CERT, passphrase: PASSPHRASE })
  const client = await connect(`wss://localhost:${port}/`, { ca })
  t.after(() => client.terminate())
  await client.send('unlocked')
  assert.equal(await client.nextText(), 'unlocked')
})

test('plain-text HTTP to the TLS port does not upgrade, and the server keeps serving wss', { timeout: 10000 }, async (t) => {
  const { port } = await wssEcho(t, { key_file_name: KEY, cert_file_name: CERT })
  const res = await rawRequest(port, upgradeRequest(), { timeout: 3000 }).catch(() => ({ status: 'no response' }))
  res.socket?.destroy()
  assert.notEqual(res.status, 101)
  const client = await connect(`wss://localhost:${port}/`, { ca })
  t.after(() => client.terminate())
  await client.send('fine')
  assert.equal(await client.nextText(), 'fine')
})

test('app.close() on an SSLApp disconnects wss clients and runs close handlers', { timeout: 10000 }, async (t) => {
  const { port, log, close } = await wssEcho(t, { key_file_name: KEY, cert_file_name: CERT })
  const client = await connect(`wss://localhost:${port}/`, { ca })
  t.after(() => client.terminate())
  await log.wait('open')
  close()
  const closed = await withTimeout(client.closed, 5000, 'wss client to be disconnected')
  assert.notEqual(closed.code, 1000)
  await log.wait('close')
})

test('key and cert given as Buffer and as PEM string (ferrosocket-only extension)',
  { timeout: 10000, skip: ferroOnly('uWS.js only reads key/cert from files') }, async (t) => {
    for (const ssl of [
      { key: fs.readFileSync(KEY), cert: fs.readFileSync(CERT) },
      { key: fs.readFileSync(KEY, 'utf8'), cert: fs.readFileSync(CERT, 'utf8') },
      { key: fs.readFileSync(ENCRYPTED_KEY), cert: fs.readFileSync(CERT), passphrase: PASSPHRASE }
    ]) {
      const { port } = await wssEcho(t, ssl)
      const client = await connect(`wss://localhost:${port}/`, { ca })
      t.after(() => client.terminate())
      await client.send('in-memory pem')
      assert.equal(await client.nextText(), 'in-memory pem')
    }
  })

// ---- bad key / cert -----------------------------------------------------
// Each case runs in a child process: a broken TLS setup must not hang or
// crash the test process (OpenSSL may try to prompt for a passphrase).

const missing = fixture('does-not-exist.pem')
const badSetups = [
  ['missing key file', { key_file_name: missing, cert_file_name: CERT }, missing],
  ['missing cert file', { key_file_name: KEY, cert_file_name: missing }, missing],
  ['encrypted key without passphrase', { key_file_name: ENCRYPTED_KEY, cert_file_name: CERT }, ENCRYPTED_KEY],
  ['encrypted key with the wrong passphrase', { key_file_name: ENCRYPTED_KEY, cert_file_name: CERT, passphrase: 'wrong' }, ENCRYPTED_KEY]
]

// Tries SSLApp(options) then listen() in a child; reports what happened.
async function trySetup (options) {
  const result = await runChild(`
    const report = (r) => { console.log('RESULT ' + JSON.stringify(r)) }
    try {
      const app = uWS.SSLApp(${JSON.stringify(options)})
      try {
        app.listen('127.0.0.1', 0, (ls) => {
          report({ stage: 'listen', listened: Boolean(ls) })
          if (ls) app.close()
        })
      } catch (err) {
        report({ stage: 'listen', threw: true, isError: err instanceof Error, message: String(err && err.message) })
      }
    } catch (err) {
      report({ stage: 'SSLApp', threw: true, isError: err instanceof Error, message: String(err && err.message) })
    }
  `, 8000)
  const line = result.stdout.split('\n').find((l) => l.startsWith('RESULT '))
  assert.ok(line, `child reported nothing (exit ${result.code}, stderr: ${result.stderr})`)
  return JSON.parse(line.slice(7))
}

for (const [name, options, file] of badSetups) {
  test(`${name}: SSLApp() or listen() throws, never listens`, { timeout: 15000 }, async () => {
    const outcome = await trySetup(options)
    assert.notEqual(outcome.listened, true, 'a broken TLS setup must not listen')
    assert.equal(outcome.threw, true, `expected an exception, got ${JSON.stringify(outcome)}`)
    assert.equal(outcome.isError, true)
  })

  test(`${name}: the Error message names the file (ferrosocket-only: uWS.js says "App construction failed")`,
    { timeout: 15000, skip: ferroOnly('uWS.js gives no detail') }, async () => {
      const outcome = await trySetup(options)
      assert.equal(outcome.threw, true)
      assert.ok(outcome.message.includes(file), `message does not name ${file}: ${outcome.message}`)
    })
}
