// index.d.ts is hand-written: type-check typical uWS.js and socket.io usage
// against it, and socket.io's own TypeScript example, so the declarations
// cannot drift from the API; and check that what they declare exists at
// runtime, so they cannot promise what the server lacks.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { createServer } from 'node:http'
import { copyFileSync, rmSync } from 'node:fs'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { io as ioc } from 'socket.io-client'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const require = createRequire(import.meta.url)
const ferrosocket = require('..')
const { Server, RemoteSocket } = ferrosocket

/** tsc's exit status is the assertion; its output is the message. */
function tsc (...args) {
  const r = spawnSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), ...args],
    { cwd: root, encoding: 'utf8' })
  assert.equal(r.status, 0, r.stdout + r.stderr)
}

test('index.d.ts accepts typical usage under tsc --strict', { timeout: 120_000 }, () => {
  tsc('--noEmit', '--strict', '--types', 'node', '__test__/fixtures/types-usage.ts')
})

// The example also holds @ts-expect-error lines (mistyped emits, listeners,
// socket.data): tsc fails if one of them compiles. It is written once, as
// ESM (example.mts); its CommonJS twin (example.cts, git-ignored) is the
// same text, made here for the CommonJS compilations.
const examples = join(root, '__test__/fixtures/socketio-types')
before(() => copyFileSync(join(examples, 'example.mts'), join(examples, 'example.cts')))
after(() => rmSync(join(examples, 'example.cts'), { force: true }))

test('socket.io\'s TypeScript example, as ESM and CommonJS under nodenext', { timeout: 120_000 }, () => {
  tsc('-p', '__test__/fixtures/socketio-types/tsconfig.json')
})

test('socket.io\'s TypeScript example under --module commonjs', { timeout: 120_000 }, () => {
  tsc('-p', '__test__/fixtures/socketio-types/tsconfig.commonjs.json')
})

/** The property names TypeScript sees on each type named, through the compiler API. */
function declared () {
  const ts = require('typescript')
  const entry = join(root, 'index.d.ts')
  const program = ts.createProgram([entry], {
    strict: true, noEmit: true, types: ['node'], typeRoots: [join(root, 'node_modules/@types')]
  })
  const diagnostics = ts.getPreEmitDiagnostics(program)
  assert.deepEqual(diagnostics.map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n')), [])
  const checker = program.getTypeChecker()
  const exports = checker.getExportsOfModule(checker.getSymbolAtLocation(program.getSourceFile(entry)))
  const byName = new Map(exports.map((s) => [s.name, s]))
  // Symbol-keyed members (EventEmitter's captureRejectionSymbol) have no name to check.
  const names = (type) => checker.getPropertiesOfType(type).map((p) => p.name).filter((n) => !n.startsWith('__@'))
  const instance = (name) => checker.getDeclaredTypeOfSymbol(byName.get(name))
  const member = (type, name) => checker.getTypeOfSymbol(checker.getPropertyOfType(type, name))
  const returned = (type, name) => checker.getSignaturesOfType(member(type, name), ts.SignatureKind.Call)[0].getReturnType()
  // Exports that exist at runtime: not `export type`, and a value (class, function, const).
  const values = exports.filter((s) => {
    if (s.declarations.some((d) => ts.isTypeOnlyImportOrExportDeclaration(d))) return false
    const target = s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s
    return (target.flags & ts.SymbolFlags.Value) !== 0
  }).map((s) => s.name)
  return {
    values,
    Server: names(instance('Server')),
    'Server.engine': names(member(instance('Server'), 'engine')),
    Namespace: names(instance('Namespace')),
    'Namespace.adapter': names(member(instance('Namespace'), 'adapter')),
    Socket: names(instance('Socket')),
    'Socket.conn': names(member(instance('Socket'), 'conn')),
    'Socket.timeout()': names(returned(instance('Socket'), 'timeout')),
    BroadcastOperator: names(instance('BroadcastOperator')),
    RemoteSocket: names(instance('RemoteSocket')),
    'RemoteSocket.timeout()': names(returned(instance('RemoteSocket'), 'timeout')),
    Handshake: names(instance('Handshake'))
  }
}

test('what index.d.ts declares exists at runtime', { timeout: 120_000 }, async (t) => {
  const types = declared()
  assert.deepEqual(types.values.filter((name) => !(name in ferrosocket)), [], 'declared exports missing at runtime')

  const io = new Server({ pingInterval: 300, pingTimeout: 200 })
  io.listen(0)
  const client = ioc(`http://127.0.0.1:${io.port}`, { transports: ['websocket'], reconnection: false, forceNew: true })
  t.after(() => {
    client.close()
    io.close()
  })
  const [socket] = await new Promise((resolve) => io.on('connection', (...args) => resolve(args)))
  const nsp = io.of('/')
  // fetchSockets gives this node's Socket objects; RemoteSocket stands for another node's.
  const [local] = await io.fetchSockets()
  const remote = new RemoteSocket(nsp.adapter, { id: socket.id, handshake: socket.handshake, rooms: [...socket.rooms], data: socket.data })
  const objects = {
    Server: [io],
    'Server.engine': [io.engine],
    Namespace: [nsp],
    'Namespace.adapter': [nsp.adapter],
    Socket: [socket],
    'Socket.conn': [socket.conn],
    'Socket.timeout()': [socket.timeout(1000)],
    BroadcastOperator: [io.to('room')],
    RemoteSocket: [local, remote],
    'RemoteSocket.timeout()': [local.timeout(1000), remote.timeout(1000)],
    Handshake: [socket.handshake]
  }
  const missing = []
  for (const [type, runtime] of Object.entries(objects)) {
    assert.ok(types[type].length > 0, `no members found for ${type}`)
    for (const object of runtime) {
      for (const name of types[type]) if (!(name in object)) missing.push(`${type}.${name} (on ${object.constructor.name})`)
    }
  }
  assert.deepEqual(missing, [])
  // Socket.request is declared as IncomingMessage but is a stand-in with these fields (see index.d.ts).
  assert.deepEqual(Object.keys(socket.request).sort(), ['_query', 'connection', 'headers', 'method', 'socket', 'url'])
  assert.deepEqual(Object.keys(socket.request.socket).sort(), ['encrypted', 'remoteAddress'])
})

test('io.close() returns a promise that resolves once the HTTP server closed', { timeout: 20_000 }, async () => {
  const httpServer = createServer()
  const io = new Server(httpServer)
  await new Promise((resolve) => httpServer.listen(0, '127.0.0.1', resolve))
  const calls = []
  const closing = io.close((...args) => calls.push(args))
  assert.ok(closing instanceof Promise)
  assert.equal(await closing, undefined)
  assert.equal(httpServer.listening, false)
  assert.deepEqual(calls, [[]])

  // Closing again: the error goes to the callback, as in socket.io; the promise still resolves.
  const again = []
  await io.close((err) => again.push(err))
  assert.equal(again.length, 1)
  assert.equal(again[0].code, 'ERR_SERVER_NOT_RUNNING')

  // Standalone (`listen(port)`), without a callback; and never attached.
  const standalone = new Server()
  standalone.listen(0)
  await standalone.close()
  assert.equal(standalone.httpServer.listening, false)
  await new Server().close()
})
