// Hand-written types for ferrosocket's public API (uWebSockets.js-style core).
// The generated binding.d.ts describes the internal native handle only.

/** Anything uWS.js accepts as a message or text. */
export type RecognizedString = string | ArrayBuffer | Uint8Array | Int8Array | Uint16Array | Int16Array |
  Uint32Array | Int32Array | Float32Array | Float64Array | Buffer | DataView

export interface AppOptions {
  /** I/O worker threads of this app's tokio runtime (default: one per core). */
  workers?: number
  /** Refuse connections beyond this many (default: unlimited). */
  maxConnections?: number
  /**
   * ms from accept to a complete request head, TLS handshake included
   * (default 10000): slower clients are dropped (slow-loris). ferrosocket
   * extension.
   */
  handshakeTimeout?: number
  /**
   * Largest request body an HTTP route is given through `onData`, bytes
   * (default 16 MiB; Infinity for none): a larger one is answered 413
   * (announced by Content-Length) or cut off with onAborted (chunked).
   * ferrosocket extension.
   */
  maxBodyLength?: number
  /**
   * Topics across processes and machines (ferrosocket extension): every
   * `app.publish` / `ws.publish` also reaches the subscribers of every App
   * linked to the same Redis under the same `prefix` (default
   * "ferrosocket"); `onState` hears 'connecting' | 'connected' |
   * 'disconnected' | 'closed'.
   */
  scaleOut?: { url: string, prefix?: string, onState?: (state: string, error?: string) => void, tls?: RedisTlsOptions }
}

/** `getScaleOutStats()`: the Redis link of `scaleOut`. */
export interface ScaleOutStats {
  state: string
  published: number
  droppedPublishes: number
  received: number
  lostMessages: number
  malformed: number
}

export interface SSLAppOptions extends AppOptions {
  key_file_name?: string
  cert_file_name?: string
  /** PEM contents instead of file names (ferrosocket extension). */
  key?: string | Buffer
  cert?: string | Buffer
  /**
   * Decrypts an encrypted PKCS#8 key (`ENCRYPTED PRIVATE KEY`, PBES2). An
   * encrypted key without it, with a wrong one, or in the legacy
   * `Proc-Type: 4,ENCRYPTED` format fails with an error naming the key
   * (convert a legacy key with `openssl pkcs8 -topk8`).
   */
  passphrase?: string
}

/** Why `listen` failed, as Node words its own listen errors (e.g. `code: 'EADDRINUSE'`). */
export interface ListenError extends Error {
  code?: string
  errno?: number
  syscall?: string
  address?: string
  port?: number
}

export type ListenCallback = (listenSocket: us_listen_socket | false, error?: ListenError) => unknown

export interface us_listen_socket {
  readonly port: number
}

export interface HttpRequest {
  /** Header value by lowercase name, or '' when absent. */
  getHeader(lowerCaseKey: RecognizedString): string
  forEach(cb: (key: string, value: string) => void): void
  /** Lowercase method, e.g. 'get'. */
  getMethod(): string
  getCaseSensitiveMethod(): string
  /** Path without the query string. */
  getUrl(): string
  /** The raw query string (without '?'), or one decoded parameter. */
  getQuery(): string
  getQuery(key: string): string | undefined
  /** A `:param`'s value by position or name ('' when there is none). */
  getParameter(index: number | string): string
  setYield(yield: boolean): HttpRequest
}

export interface HttpResponse {
  writeStatus(status: RecognizedString): HttpResponse
  writeHeader(key: RecognizedString, value: RecognizedString): HttpResponse
  /** Sends a piece of the body (chunked unless a Content-Length was written); false: over 64 KiB queued, wait for onWritable. */
  write(chunk: RecognizedString): boolean
  /** Ends the response; the connection stays open for the client's next request unless `closeConnection` (or the client asked to close). */
  end(body?: RecognizedString, closeConnection?: boolean): HttpResponse
  /** Ends with no body, announcing `reportedContentLength` (answers to HEAD). */
  endWithoutBody(reportedContentLength?: number, closeConnection?: boolean): HttpResponse
  /** A chunk of a `totalSize`-byte body: [ok (no backpressure), done (totalSize reached)]. */
  tryEnd(fullBodyOrChunk: RecognizedString, totalSize: number): [boolean, boolean]
  /** Body bytes given so far. */
  getWriteOffset(): number
  /** `handler(offset)` once what was queued has gone to the socket. */
  onWritable(handler: (offset: number) => boolean | void): HttpResponse
  /** Accepts the WebSocket upgrade; `userData` is what `ws.getUserData()` returns. */
  upgrade<UserData>(userData: UserData, secWebSocketKey: RecognizedString, secWebSocketProtocol: RecognizedString,
    secWebSocketExtensions: RecognizedString, context: unknown): void
  onAborted(handler: () => void): HttpResponse
  onData(handler: (chunk: ArrayBuffer, isLast: boolean) => void): HttpResponse
  cork(cb: () => void): HttpResponse
  close(): HttpResponse
  getRemoteAddressAsText(): ArrayBuffer
  readonly aborted: boolean
}

export interface WebSocket<UserData> {
  /** 1 sent, 0 buffered (backpressure; `drain` follows), 2 dropped (over maxBackpressure). */
  send(message: RecognizedString, isBinary?: boolean, compress?: boolean): number
  /** Graceful close (close frame); calls the close handler immediately. */
  end(code?: number, shortMessage?: RecognizedString): void
  /** Abrupt close (no close frame); the close handler sees 1006. */
  close(): void
  ping(message?: RecognizedString): number
  /** Sends made inside `cb` leave in one write. */
  cork(cb: () => void): WebSocket<UserData>
  getBufferedAmount(): number
  getUserData(): UserData
  getRemoteAddress(): ArrayBuffer
  getRemoteAddressAsText(): ArrayBuffer
  subscribe(topic: RecognizedString): boolean
  unsubscribe(topic: RecognizedString): boolean
  isSubscribed(topic: RecognizedString): boolean
  getTopics(): string[]
  /** Publishes to every subscriber of `topic` except this socket. */
  publish(topic: RecognizedString, message: RecognizedString, isBinary?: boolean, compress?: boolean): boolean
}

export interface WebSocketBehavior<UserData> {
  /** Seconds without receiving anything before the socket is closed (default 120, 0 = never). */
  idleTimeout?: number
  /** Largest message accepted, in bytes (default 16 KiB); larger closes with 1009. */
  maxPayloadLength?: number
  /** Bytes a socket may have queued before sends are dropped (default 64 KiB). */
  maxBackpressure?: number
  /** Close (1009) instead of dropping when over maxBackpressure (default false). */
  closeOnBackpressureLimit?: boolean
  /** Ping idle clients before idleTimeout so live ones stay connected (default true). */
  sendPingsAutomatically?: boolean
  /**
   * permessage-deflate (default DISABLED): SHARED_COMPRESSOR (a fresh context
   * per message, no memory per connection) or a DEDICATED_COMPRESSOR_* (a
   * compressor per connection, context kept), or-ed with SHARED_DECOMPRESSOR
   * or a DEDICATED_DECOMPRESSOR_*. Messages go compressed when sent or
   * published with `compress` true.
   */
  compression?: number
  maxLifetime?: number
  upgrade?: (res: HttpResponse, req: HttpRequest, context: unknown) => unknown
  open?: (ws: WebSocket<UserData>) => unknown
  message?: (ws: WebSocket<UserData>, message: ArrayBuffer, isBinary: boolean) => unknown
  drain?: (ws: WebSocket<UserData>) => void
  dropped?: (ws: WebSocket<UserData>, message: RecognizedString, isBinary: boolean) => void
  close?: (ws: WebSocket<UserData>, code: number, message: ArrayBuffer) => void
  ping?: (ws: WebSocket<UserData>, message: ArrayBuffer) => void
  pong?: (ws: WebSocket<UserData>, message: ArrayBuffer) => void
}

export type RouteHandler = (res: HttpResponse, req: HttpRequest) => unknown

export interface TemplatedApp {
  ws<UserData = unknown>(pattern: RecognizedString, behavior: WebSocketBehavior<UserData>): TemplatedApp
  get(pattern: RecognizedString, handler: RouteHandler): TemplatedApp
  post(pattern: RecognizedString, handler: RouteHandler): TemplatedApp
  put(pattern: RecognizedString, handler: RouteHandler): TemplatedApp
  del(pattern: RecognizedString, handler: RouteHandler): TemplatedApp
  patch(pattern: RecognizedString, handler: RouteHandler): TemplatedApp
  options(pattern: RecognizedString, handler: RouteHandler): TemplatedApp
  head(pattern: RecognizedString, handler: RouteHandler): TemplatedApp
  connect(pattern: RecognizedString, handler: RouteHandler): TemplatedApp
  trace(pattern: RecognizedString, handler: RouteHandler): TemplatedApp
  any(pattern: RecognizedString, handler: RouteHandler): TemplatedApp
  /**
   * As uWS.js: the callback gets the listen socket, or `false` on failure;
   * then (ferrosocket extension) also the reason, shaped like Node's own
   * listen errors.
   */
  listen(host: RecognizedString, port: number | string, cb: ListenCallback): TemplatedApp
  listen(port: number | string, cb: ListenCallback): TemplatedApp
  listen(port: number | string, options: number, cb: ListenCallback): TemplatedApp
  /** Publishes to every subscriber of `topic`; true when at least one got it. */
  publish(topic: RecognizedString, message: RecognizedString, isBinary?: boolean, compress?: boolean): boolean
  numSubscribers(topic: RecognizedString): number
  /** With `scaleOut`: the Redis link's state and counters (null without it; ferrosocket extension). */
  getScaleOutStats(): ScaleOutStats | null
  /** Closes listeners and every connection (1001); afterwards Node can exit. */
  close(): TemplatedApp
}

export function App(options?: AppOptions): TemplatedApp
export function SSLApp(options: SSLAppOptions): TemplatedApp
export function us_listen_socket_close(listenSocket: us_listen_socket): void
export function us_socket_local_port(listenSocket: us_listen_socket): number
/** `compression` values (uWS.js's): one compressor or-ed with one decompressor. */
export const DISABLED: number
export const SHARED_COMPRESSOR: number
export const SHARED_DECOMPRESSOR: number
export const DEDICATED_COMPRESSOR: number
export const DEDICATED_COMPRESSOR_3KB: number
export const DEDICATED_COMPRESSOR_4KB: number
export const DEDICATED_COMPRESSOR_8KB: number
export const DEDICATED_COMPRESSOR_16KB: number
export const DEDICATED_COMPRESSOR_32KB: number
export const DEDICATED_COMPRESSOR_64KB: number
export const DEDICATED_COMPRESSOR_128KB: number
export const DEDICATED_COMPRESSOR_256KB: number
export const DEDICATED_DECOMPRESSOR: number
export const DEDICATED_DECOMPRESSOR_32KB: number
export const DEDICATED_DECOMPRESSOR_16KB: number
export const DEDICATED_DECOMPRESSOR_8KB: number
export const DEDICATED_DECOMPRESSOR_4KB: number
export const DEDICATED_DECOMPRESSOR_2KB: number
export const DEDICATED_DECOMPRESSOR_1KB: number
export const DEDICATED_DECOMPRESSOR_512B: number
/** `listen(port, LIBUS_LISTEN_DEFAULT, cb)`: a fixed port is shared with other processes (SO_REUSEPORT), as uWS.js does on Linux. */
export const LIBUS_LISTEN_DEFAULT: number
/** `listen(port, LIBUS_LISTEN_EXCLUSIVE_PORT, cb)`: the port is not shared. */
export const LIBUS_LISTEN_EXCLUSIVE_PORT: number
export function version(): string

// ---- Socket.IO server (Engine.IO long-polling and WebSocket) --------------
// Declared as socket.io 4.8 declares its server (the same generic
// parameters, typed emits, listeners and acks), so that code typed against
// socket.io compiles against ferrosocket. Members socket.io has and this
// runtime lacks are left out: using one is a compile error, not a surprise.

import type { EventEmitter } from 'node:events'
import type { IncomingHttpHeaders, IncomingMessage, Server as HttpServer } from 'node:http'
import type { Server as HttpsServer } from 'node:https'
import type { ParsedUrlQuery } from 'node:querystring'
import type {
  AllButLast, DecorateAcknowledgements, DecorateAcknowledgementsWithMultipleResponses,
  DecorateAcknowledgementsWithTimeoutAndMultipleResponses, DefaultEventsMap, EventNames, EventNamesWithAck,
  EventNamesWithError, EventNamesWithoutAck, EventParams, EventsMap, FirstNonErrorArg, Last,
  RemoveAcknowledgements, StrictEventEmitter, TypedEventBroadcaster
} from './lib/socketio/typed-events.js'

export type {
  AllButLast, DecorateAcknowledgements, DecorateAcknowledgementsWithMultipleResponses,
  DecorateAcknowledgementsWithTimeoutAndMultipleResponses, DefaultEventsMap, EventNames, EventNamesWithAck,
  EventNamesWithError, EventNamesWithoutAck, EventParams, EventsMap, FirstNonErrorArg, FirstNonErrorTuple, Last,
  MultiplyArray, RemoveAcknowledgements, ReservedOrUserEventNames, ReservedOrUserListener, StrictEventEmitter,
  TypedEventBroadcaster
} from './lib/socketio/typed-events.js'

/**
 * What the `adapter` option and `io.adapter(X)` take, as socket.io types it:
 * a socket.io-adapter compatible class, or a factory such as
 * `createAdapter(pub, sub)` (called with `new X(namespace)`).
 */
export type AdapterConstructor = (abstract new (nsp: any) => any) | ((nsp: any) => any)

/**
 * TLS to Redis, for a `rediss://` URL, as Node's `tls.connect` takes them
 * (PEM text): `ca` replaces the system's CAs; `cert` and `key` together
 * authenticate this client (Redis's `tls-auth-clients`).
 */
export interface RedisTlsOptions {
  ca?: string | Buffer | Array<string | Buffer>
  cert?: string | Buffer
  key?: string | Buffer
  /** false: any server certificate is accepted (self-signed hosted Redis). Default true. */
  rejectUnauthorized?: boolean
}

/** Options of `createRedisAdapter` (as @socket.io/redis-adapter's, plus `url`). */
export interface RedisAdapterOptions {
  /**
   * Default `redis://127.0.0.1:6379`; a cluster as
   * `redis-cluster://host:port?node=host:port&node=host:port`.
   */
  url?: string
  /** TLS settings for a `rediss://` URL (default: the system's CAs). */
  tls?: RedisTlsOptions
  /** The channels' prefix. Default `socket.io`. */
  key?: string
  /** The sharded adapter's name for `key` (give one or the other). */
  channelPrefix?: string
  /** How long cross-node requests wait for answers, ms. Default 5000. */
  requestsTimeout?: number
  /** Answers go to the asking node's own channel. Default false. */
  publishOnSpecificResponseChannel?: boolean
  /**
   * `false` (default): the classic protocol (`createAdapter`). `true` or
   * `{ subscriptionMode }`: the sharded one (`createShardedAdapter`, Redis 7
   * sharded pub/sub); `subscriptionMode` defaults to `'dynamic'`.
   */
  sharded?: boolean | { subscriptionMode?: 'static' | 'dynamic' | 'dynamic-private' }
}

/**
 * Scales the Socket.IO server out on Redis, wire-compatible with
 * @socket.io/redis-adapter 8 (classic) and @socket.io/redis-emitter 5: the
 * connections and broadcasts live in Rust. Pass it to `io.adapter()` or the
 * `adapter` option. Each namespace's adapter then has `state`
 * ('connecting' | 'connected' | 'disconnected' | 'closed'), a 'state'
 * event, `stats` and `serverCount()`.
 */
export function createRedisAdapter(options?: RedisAdapterOptions): AdapterConstructor

/** socket.io-adapter's names: a room, and a socket id (also the name of the socket's own room). */
export type Room = string
export type SocketId = string

export type DisconnectReason =
  | 'transport error'
  | 'transport close'
  | 'forced close'
  | 'ping timeout'
  | 'parse error'
  | 'server shutting down'
  | 'forced server close'
  | 'client namespace disconnect'
  | 'server namespace disconnect'

/** What packet middleware (`socket.use`) sees: the event name, then its arguments. */
export type Event = [string, ...any[]]

/** Refuses a connection in middleware; `data` reaches the client's connect_error. */
export interface ExtendedError extends Error {
  data?: any
}

/** The `cors` package's options (declared here so no @types package is needed). */
export interface CorsOptions {
  origin?: boolean | string | RegExp | Array<boolean | string | RegExp> |
    ((origin: string | undefined, cb: (err: Error | null, origin?: boolean | string | RegExp | Array<boolean | string | RegExp>) => void) => void)
  methods?: string | string[]
  allowedHeaders?: string | string[]
  exposedHeaders?: string | string[]
  credentials?: boolean
  maxAge?: number
  preflightContinue?: boolean
  optionsSuccessStatus?: number
}

/** The `cors` package's per-request delegate: options decided from the request. */
export type CorsOptionsDelegate = (req: IncomingMessage, cb: (err: Error | null, options?: CorsOptions) => void) => void

/** engine.io's options: those of `EngineServer`, and the base of `ServerOptions`. */
export interface EngineServerOptions {
  /** Default '/engine.io' ('/socket.io' for `Server`). */
  path?: string
  /** Engine.IO heartbeat, in ms (defaults 25000 / 20000), run in Rust; together at most 2^31-1. */
  pingInterval?: number
  pingTimeout?: number
  /** Largest message accepted, in bytes (default 1e6). */
  maxHttpBufferSize?: number
  /**
   * Bytes that may wait for one client (either transport) before it is
   * disconnected with "transport error" (it then reconnects); 1 KiB to
   * 1 TiB, default 16 MiB. ferrosocket extension.
   */
  maxBackpressure?: number
  /**
   * ms from accept to a complete request head on the listener Rust owns
   * (default 10000), also for the heads it hands to Node (an attached
   * http.Server's own routes): slower clients are dropped (slow-loris).
   * ferrosocket extension.
   */
  handshakeTimeout?: number
  /** ms a WebSocket probe may take to complete the upgrade from polling (default 10000). */
  upgradeTimeout?: number
  /** Let polling clients upgrade to WebSocket (default true). */
  allowUpgrades?: boolean
  /** Default ['polling', 'websocket']; 'webtransport' is accepted and never offered. */
  transports?: Array<'polling' | 'websocket' | 'webtransport'>
  /** The `cors` package's options or delegate; also applied to the Origin of WebSocket upgrades. */
  cors?: CorsOptions | CorsOptionsDelegate | boolean
  /** Decides each handshake request (polling and WebSocket): `cb(errorMessage, allowed)`. */
  allowRequest?: (req: IncomingMessage, cb: (err: string | null | undefined, success: boolean) => void) => void
  /** Close upgrade requests for other paths after destroyUpgradeTimeout ms (default true, 1000). */
  destroyUpgrade?: boolean
  destroyUpgradeTimeout?: number
  /** I/O worker threads (default: one per core; ferrosocket extension). */
  workers?: number
  /**
   * WebSocket permessage-deflate (default false, as socket.io): true, or
   * `{ threshold }` (bytes, default 1024; smaller packets go as they are).
   * A fresh compression context per message both ways unless
   * `serverNoContextTakeover: false` / `clientNoContextTakeover: false`
   * (a compressor / decompressor per connection). ws's zlib tuning options
   * are accepted and not applied.
   */
  perMessageDeflate?: boolean | { threshold?: number, serverNoContextTakeover?: boolean, clientNoContextTakeover?: boolean, [wsOption: string]: unknown }
  /** Accepted and ignored: long-polling responses are not compressed. */
  httpCompression?: boolean | object
  /** Accepted and ignored: the WebSocket server is ferrosocket's own. */
  wsEngine?: unknown
  /** Accepted and ignored: no cookie is set. */
  cookie?: boolean | object
  /** Accepted and ignored. */
  initialPacket?: unknown
  /** Serve socket.io-client v2 (Engine.IO v3) too, as socket.io does (default false). */
  allowEIO3?: boolean
}

/**
 * `ServerOptions.tls`: the key and certificate chain as PEM (`key`, `cert`,
 * as `https.createServer` takes them) or as files (`key_file_name`,
 * `cert_file_name`, as `SSLApp` takes them), one or the other for each.
 * No other TLS settings (`ca`, `requestCert`, `pfx`…): they are refused.
 */
export interface ServerTlsOptions {
  key?: string | Buffer
  cert?: string | Buffer
  key_file_name?: string
  cert_file_name?: string
  /** Decrypts an encrypted PKCS#8 key (`ENCRYPTED PRIVATE KEY`). */
  passphrase?: string
}

export interface ServerOptions extends EngineServerOptions {
  /** ms a client may stay connected without joining a namespace (default 45000; 0 = default). */
  connectTimeout?: number
  /** Serve /socket.io/socket.io.js and friends (default true). */
  serveClient?: boolean
  /** Interface to listen on when given a port (default: all; ferrosocket extension). */
  host?: string
  /**
   * With a port: the Rust listener shares it (SO_REUSEPORT) with other
   * processes that ask the same, the kernel spreading connections between
   * them (ferrosocket extension; default false, as Node's `listen`).
   */
  reusePort?: boolean
  /**
   * The standalone form over TLS, terminated in Rust: `new Server(port, {
   * tls })` or `io.listen(port)` serves wss:// and https:// long-polling
   * (and the client bundle) on one Rust listener, as `attachApp(SSLApp())`
   * does (ferrosocket extension). A key or certificate that does not load
   * fails at construction (`code: 'FERROSOCKET_BAD_TLS'`). Refused with an
   * http(s).Server argument (an https.Server keeps Node's TLS) and, for
   * now, with `cors` or `allowRequest` (`FERROSOCKET_UNSUPPORTED`).
   * `io.httpServer` is then a stand-in, not a Node server: `address()`,
   * `listening`, `close(cb)` and the 'listening', 'error' and 'close'
   * events report the Rust listener; nothing else reaches it.
   */
  tls?: ServerTlsOptions
  /** Accepted and ignored. */
  addTrailingSlash?: boolean
  /** A dynamic parent's child namespace is removed when its last socket leaves. */
  cleanupEmptyChildNamespaces?: boolean
  /**
   * A client that lost its connection comes back with its id, rooms, data
   * and the packets it missed (socket.io's connection state recovery).
   */
  connectionStateRecovery?: boolean | {
    /** How long a lost session is kept, ms (default 120000). */
    maxDisconnectionDuration?: number
    /** A recovered socket skips the middleware (default true). */
    skipMiddlewares?: boolean
    /** ferrosocket extension: at most this many bytes of stored broadcasts (default 64 MiB). */
    maxStoredBytes?: number
  }
  /**
   * A socket.io-adapter compatible adapter class or factory (e.g.
   * `createAdapter(pub, sub)` of @socket.io/redis-adapter), made for every
   * namespace; default: the built-in one (rooms and fan-out in Rust).
   */
  adapter?: AdapterConstructor
  /** Refused at runtime (FERROSOCKET_UNSUPPORTED): only the default parser exists. */
  parser?: never
}

/** `socket.handshake`: the request that opened the client's session. */
export interface Handshake {
  /** Repeated headers arrive joined with ', ', as Node joins them. */
  headers: IncomingHttpHeaders
  /** Creation date, as a string. */
  time: string
  address: string
  xdomain: boolean
  secure: boolean
  /** Creation date, in ms since the epoch. */
  issued: number
  url: string
  query: ParsedUrlQuery
  /** What the client passed as `auth` (`{}` when nothing). */
  auth: { [key: string]: any }
}

export interface SocketReservedEventsMap {
  disconnect: (reason: DisconnectReason, description?: any) => void
  disconnecting: (reason: DisconnectReason, description?: any) => void
  /** A packet middleware (`socket.use`) called `next(err)`. */
  error: (err: Error) => void
}

export interface NamespaceReservedEventsMap<ListenEvents extends EventsMap, EmitEvents extends EventsMap,
  ServerSideEvents extends EventsMap, SocketData> {
  connect: (socket: Socket<ListenEvents, EmitEvents, ServerSideEvents, SocketData>) => void
  connection: (socket: Socket<ListenEvents, EmitEvents, ServerSideEvents, SocketData>) => void
}

// socket.io's map also has 'new_namespace', which this server never emits.
export interface ServerReservedEventsMap<ListenEvents extends EventsMap, EmitEvents extends EventsMap,
  ServerSideEvents extends EventsMap, SocketData>
  extends NamespaceReservedEventsMap<ListenEvents, EmitEvents, ServerSideEvents, SocketData> {}

type HttpServerLike = HttpServer | HttpsServer

/** Decides whether a dynamic namespace named `name` may be created for a client. */
type ParentNspNameMatchFn = (name: string, auth: { [key: string]: any },
  fn: (err: Error | null, success: boolean) => void) => void

/**
 * `io.to(room)`, `socket.broadcast`, `nsp.except(room)`…: who gets an emit.
 * Immutable: every modifier returns a new operator.
 */
export declare class BroadcastOperator<EmitEvents extends EventsMap, SocketData>
  implements TypedEventBroadcaster<EmitEvents> {
  // Made by the server and its sockets, never by user code.
  private constructor()
  to(room: Room | Room[]): BroadcastOperator<EmitEvents, SocketData>
  in(room: Room | Room[]): BroadcastOperator<EmitEvents, SocketData>
  except(room: Room | Room[]): BroadcastOperator<EmitEvents, SocketData>
  compress(compress: boolean): BroadcastOperator<EmitEvents, SocketData>
  readonly volatile: BroadcastOperator<EmitEvents, SocketData>
  readonly local: BroadcastOperator<EmitEvents, SocketData>
  /** Acks of a broadcast arrive as (err, responses) within `timeout` ms. */
  timeout(timeout: number): BroadcastOperator<DecorateAcknowledgements<EmitEvents>, SocketData>
  /** Encoded once, framed once in Rust for every recipient. */
  emit<Ev extends EventNames<EmitEvents>>(ev: Ev, ...args: EventParams<EmitEvents, Ev>): boolean
  emitWithAck<Ev extends EventNamesWithError<EmitEvents>>(ev: Ev, ...args: AllButLast<EventParams<EmitEvents, Ev>>):
    Promise<FirstNonErrorArg<Last<EventParams<EmitEvents, Ev>>>>
  /** `emit('message', ...args)` (ferrosocket extension). */
  send(...args: EventParams<EmitEvents, 'message'>): boolean
  fetchSockets(): Promise<RemoteSocket<EmitEvents, SocketData>[]>
  socketsJoin(room: Room | Room[]): void
  socketsLeave(room: Room | Room[]): void
  disconnectSockets(close?: boolean): void
  /** Deprecated in socket.io: the ids of the sockets of the namespace. */
  allSockets(): Promise<Set<SocketId>>
}

/**
 * What `fetchSockets()` gives: a socket known by its details. Sockets of this
 * node come back as their Socket objects (as in socket.io), so only what both
 * have is declared.
 */
export declare class RemoteSocket<EmitEvents extends EventsMap, SocketData> implements TypedEventBroadcaster<EmitEvents> {
  // Made by fetchSockets(), never by user code.
  private constructor()
  readonly id: SocketId
  readonly handshake: Handshake
  readonly rooms: Set<Room>
  readonly data: SocketData
  emit<Ev extends EventNames<EmitEvents>>(ev: Ev, ...args: EventParams<EmitEvents, Ev>): boolean
  timeout(timeout: number): AckEmitter<DecorateAcknowledgements<EmitEvents>>
  join(room: Room | Room[]): void
  leave(room: Room): void
  disconnect(close?: boolean): this
}

/**
 * `timeout(ms)` of one socket: the ack gets (err, ...response), err after
 * the timeout; an event without an ack is emitted as usual.
 */
interface AckEmitter<EmitEvents extends EventsMap> {
  emit<Ev extends EventNames<EmitEvents>>(ev: Ev, ...args: EventParams<EmitEvents, Ev>): boolean
  emitWithAck<Ev extends EventNamesWithAck<EmitEvents>>(ev: Ev, ...args: AllButLast<EventParams<EmitEvents, Ev>>):
    Promise<FirstNonErrorArg<Last<EventParams<EmitEvents, Ev>>>>
}

/**
 * One client's presence in one namespace: `on` listens to what the client
 * emits (`ListenEvents`), `emit` sends to it (`EmitEvents`).
 */
export declare class Socket<
  ListenEvents extends EventsMap = DefaultEventsMap,
  EmitEvents extends EventsMap = ListenEvents,
  ServerSideEvents extends EventsMap = DefaultEventsMap,
  SocketData = any
> extends StrictEventEmitter<ListenEvents, EmitEvents, SocketReservedEventsMap> {
  // Made by a namespace when a client connects, never by user code.
  private constructor()
  readonly id: SocketId
  readonly nsp: Namespace<ListenEvents, EmitEvents, ServerSideEvents, SocketData>
  readonly server: Server<ListenEvents, EmitEvents, ServerSideEvents, SocketData>
  readonly handshake: Handshake
  /** Free for the application (`{}` until set). */
  data: SocketData
  readonly rooms: Set<Room>
  readonly connected: boolean
  readonly disconnected: boolean
  /**
   * Typed as socket.io types it, but not a real IncomingMessage (no stream,
   * no rawHeaders): a plain object with `method` ('GET'), `url`, `headers`
   * (those of `handshake`) and `socket`/`connection` holding only
   * `remoteAddress` and `encrypted`. The handshake request is parsed in
   * Rust, so there is no Node request to keep; these are the fields apps read.
   */
  readonly request: IncomingMessage
  /** The Engine.IO session, reduced to its transport ('polling' until upgraded) and state. */
  /** True when connection state recovery restored this socket (its id, rooms, data, missed packets). */
  readonly recovered: boolean
  /** Its private session id, with connection state recovery on. */
  readonly pid: string | undefined
  readonly conn: EngineConn
  /** A trailing function receives the client's ack; binary values anywhere travel as attachments. */
  emit<Ev extends EventNames<EmitEvents>>(ev: Ev, ...args: EventParams<EmitEvents, Ev>): boolean
  emitWithAck<Ev extends EventNamesWithAck<EmitEvents>>(ev: Ev, ...args: AllButLast<EventParams<EmitEvents, Ev>>):
    Promise<FirstNonErrorArg<Last<EventParams<EmitEvents, Ev>>>>
  timeout(timeout: number): AckEmitter<DecorateAcknowledgements<EmitEvents>>
  send(...args: EventParams<EmitEvents, 'message'>): this
  join(rooms: Room | Room[]): void
  leave(room: Room): void
  to(room: Room | Room[]): BroadcastOperator<DecorateAcknowledgementsWithMultipleResponses<EmitEvents>, SocketData>
  in(room: Room | Room[]): BroadcastOperator<DecorateAcknowledgementsWithMultipleResponses<EmitEvents>, SocketData>
  except(room: Room | Room[]): BroadcastOperator<DecorateAcknowledgementsWithMultipleResponses<EmitEvents>, SocketData>
  /** Every other socket of the namespace. */
  readonly broadcast: BroadcastOperator<DecorateAcknowledgementsWithMultipleResponses<EmitEvents>, SocketData>
  /** The next emit is dropped if the transport cannot take it now. */
  readonly volatile: this
  /** false: the next emit is not compressed (with perMessageDeflate on). */
  compress(compress: boolean): this
  /** The next broadcast from this socket: this node only. */
  readonly local: this
  /** Leaves the namespace; with `close`, closes the whole connection. */
  disconnect(close?: boolean): this
  /** Packet middleware; `next(err)` emits 'error' on the socket instead of delivering. */
  use(fn: (event: Event, next: (err?: Error) => void) => void): this
  onAny(listener: (...args: any[]) => void): this
  prependAny(listener: (...args: any[]) => void): this
  offAny(listener?: (...args: any[]) => void): this
  listenersAny(): ((...args: any[]) => void)[]
  onAnyOutgoing(listener: (...args: any[]) => void): this
  prependAnyOutgoing(listener: (...args: any[]) => void): this
  offAnyOutgoing(listener?: (...args: any[]) => void): this
  listenersAnyOutgoing(): ((...args: any[]) => void)[]
}

/**
 * What a namespace and the server (for its main namespace) share: middleware,
 * room targeting, broadcasts, server-side events and the socket operators.
 * Merged into both classes below (same type parameters, as merging needs).
 */
interface NamespaceOperations<
  ListenEvents extends EventsMap = DefaultEventsMap,
  EmitEvents extends EventsMap = ListenEvents,
  ServerSideEvents extends EventsMap = DefaultEventsMap,
  SocketData = any
> {
  use(fn: (socket: Socket<ListenEvents, EmitEvents, ServerSideEvents, SocketData>,
    next: (err?: ExtendedError) => void) => void): this
  to(room: Room | Room[]): BroadcastOperator<DecorateAcknowledgementsWithMultipleResponses<EmitEvents>, SocketData>
  in(room: Room | Room[]): BroadcastOperator<DecorateAcknowledgementsWithMultipleResponses<EmitEvents>, SocketData>
  except(room: Room | Room[]): BroadcastOperator<DecorateAcknowledgementsWithMultipleResponses<EmitEvents>, SocketData>
  send(...args: EventParams<EmitEvents, 'message'>): this
  /** Other servers of a cluster: none on a single node, so an ack gets (null, []). */
  serverSideEmit<Ev extends EventNames<ServerSideEvents>>(ev: Ev,
    ...args: EventParams<DecorateAcknowledgementsWithTimeoutAndMultipleResponses<ServerSideEvents>, Ev>): boolean
  /** Resolves to [] on a single node. */
  serverSideEmitWithAck<Ev extends EventNamesWithAck<ServerSideEvents>>(ev: Ev,
    ...args: AllButLast<EventParams<ServerSideEvents, Ev>>): Promise<FirstNonErrorArg<Last<EventParams<ServerSideEvents, Ev>>>[]>
  compress(compress: boolean): BroadcastOperator<DecorateAcknowledgementsWithMultipleResponses<EmitEvents>, SocketData>
  readonly volatile: BroadcastOperator<DecorateAcknowledgementsWithMultipleResponses<EmitEvents>, SocketData>
  readonly local: BroadcastOperator<DecorateAcknowledgementsWithMultipleResponses<EmitEvents>, SocketData>
  timeout(timeout: number):
    BroadcastOperator<DecorateAcknowledgements<DecorateAcknowledgementsWithMultipleResponses<EmitEvents>>, SocketData>
  /** Every socket's ack (ferrosocket extension); without `timeout(ms)` first the acks time out at once, as socket.io's broadcast acks do. */
  emitWithAck: BroadcastOperator<DecorateAcknowledgementsWithMultipleResponses<EmitEvents>, SocketData>['emitWithAck']
  fetchSockets(): Promise<RemoteSocket<EmitEvents, SocketData>[]>
  socketsJoin(room: Room | Room[]): void
  socketsLeave(room: Room | Room[]): void
  disconnectSockets(close?: boolean): void
}

/** A namespace (`io.of('/chat')`): middleware, sockets, rooms, broadcasts. */
export declare class Namespace<
  ListenEvents extends EventsMap = DefaultEventsMap,
  EmitEvents extends EventsMap = ListenEvents,
  ServerSideEvents extends EventsMap = DefaultEventsMap,
  SocketData = any
> extends StrictEventEmitter<ServerSideEvents, RemoveAcknowledgements<EmitEvents>,
  NamespaceReservedEventsMap<ListenEvents, EmitEvents, ServerSideEvents, SocketData>> {
  // Made by `io.of()`, never by user code.
  private constructor()
  readonly name: string
  readonly server: Server<ListenEvents, EmitEvents, ServerSideEvents, SocketData>
  readonly sockets: Map<SocketId, Socket<ListenEvents, EmitEvents, ServerSideEvents, SocketData>>
  /**
   * The namespace's adapter: the built-in one as apps read socket.io's
   * in-memory adapter (rooms -> socket ids, socket id -> rooms; read-only),
   * or the custom adapter given.
   */
  readonly adapter: { readonly rooms: Map<Room, Set<SocketId>>, readonly sids: Map<SocketId, Set<Room>> }
  /** Broadcast to every socket of the namespace (acks need `timeout(ms)` first). */
  emit<Ev extends EventNamesWithoutAck<EmitEvents>>(ev: Ev, ...args: EventParams<EmitEvents, Ev>): boolean
}

export interface Namespace<
  ListenEvents extends EventsMap = DefaultEventsMap,
  EmitEvents extends EventsMap = ListenEvents,
  ServerSideEvents extends EventsMap = DefaultEventsMap,
  SocketData = any
>
  extends NamespaceOperations<ListenEvents, EmitEvents, ServerSideEvents, SocketData> {}

/** socket.io's Server: long-polling and WebSocket, on a Node http(s) server given or created. */
export declare class Server<
  ListenEvents extends EventsMap = DefaultEventsMap,
  EmitEvents extends EventsMap = ListenEvents,
  ServerSideEvents extends EventsMap = DefaultEventsMap,
  SocketData = any
> extends StrictEventEmitter<ServerSideEvents, RemoveAcknowledgements<EmitEvents>,
  ServerReservedEventsMap<ListenEvents, EmitEvents, ServerSideEvents, SocketData>> {
  constructor(opts?: ServerOptions)
  constructor(srv?: HttpServerLike | number, opts?: ServerOptions)
  constructor(srv: undefined | ServerOptions | HttpServerLike | number, opts?: ServerOptions)
  /** The main namespace, `/`, which the server's own broadcast methods target. */
  readonly sockets: Namespace<ListenEvents, EmitEvents, ServerSideEvents, SocketData>
  /** The Engine.IO side: open sessions, and 'connection_error' / 'headers' / 'initial_headers' events. */
  readonly engine: EventEmitter & { readonly clientsCount: number }
  /**
   * The Node HTTP server in use (created by `listen(port)` when not given).
   * With the `tls` option: a stand-in for the Rust listener, with only
   * `address()`, `listening`, `close(cb)` and the 'listening', 'error' and
   * 'close' events (see `ServerOptions.tls`).
   */
  readonly httpServer: HttpServerLike | null
  /** The port listened on (useful after `listen(0)`; ferrosocket extension). */
  readonly port: number | undefined
  listen(srv?: HttpServerLike | number, opts?: ServerOptions): this
  attach(srv?: HttpServerLike | number, opts?: ServerOptions): this
  /**
   * Socket.IO on ferrosocket's own App()/SSLApp() (socket.io's attachApp for
   * uWebSockets.js): one Rust listener for the app's routes and the engine.
   * `cors` and `allowRequest` are refused here.
   */
  attachApp(app: TemplatedApp, opts?: ServerOptions): this
  /**
   * A namespace, or a dynamic parent (RegExp, or a function deciding by name
   * and auth); `fn` listens to its connections.
   */
  of(name: string | RegExp | ParentNspNameMatchFn,
    fn?: (socket: Socket<ListenEvents, EmitEvents, ServerSideEvents, SocketData>) => void):
    Namespace<ListenEvents, EmitEvents, ServerSideEvents, SocketData>
  /** The path served (`/socket.io`); with a value, sets it before attaching. */
  path(): string
  path(v: string): this
  /** Whether the client bundle is served; with a value, sets it before attaching. */
  serveClient(): boolean
  serveClient(v: boolean): this
  /** ms a client may stay in no namespace; with a value, sets it. */
  connectTimeout(): number
  connectTimeout(v: number): this
  /** The adapter class of every namespace; with a value, every namespace gets `new v(nsp)`, existing ones included. */
  adapter(): AdapterConstructor
  adapter(v: AdapterConstructor): this
  write(...args: EventParams<EmitEvents, 'message'>): this
  /** Resolves once the HTTP server has closed; an error closing it goes to `fn` only, never rejects. */
  close(fn?: (err?: Error) => void): Promise<void>
}

export interface Server<
  ListenEvents extends EventsMap = DefaultEventsMap,
  EmitEvents extends EventsMap = ListenEvents,
  ServerSideEvents extends EventsMap = DefaultEventsMap,
  SocketData = any
>
  extends NamespaceOperations<ListenEvents, EmitEvents, ServerSideEvents, SocketData> {}

/**
 * `socket.conn`: the client's Engine.IO session (engine.io's Socket, as far
 * as ferrosocket has it): 'upgrade' (transport) and 'close' (reason) events.
 */
interface EngineConn extends EventEmitter {
  /** The Engine.IO session id. */
  readonly id: string
  readonly protocol: number
  readonly remoteAddress: string
  readonly transport: { readonly name: 'polling' | 'websocket' }
  readonly readyState: 'open' | 'closed'
  readonly request: Socket['request']
  /** Closes the connection: every namespace of the client goes. */
  close(): this
}

/** One Engine.IO session: 'message' (string | Buffer) and 'close' (reason) events. */
export declare class EngineSocket extends EventEmitter {
  readonly id: string
  readonly remoteAddress: string
  readonly readyState: 'open' | 'closing' | 'closed'
  readonly transport: { readonly name: 'polling' | 'websocket' }
  send(data: string | Buffer | ArrayBuffer | ArrayBufferView, cb?: () => void): this
  close(): void
}

/** A raw Engine.IO v4 server (engine.io's Server, no Socket.IO on top). */
export declare class EngineServer extends EventEmitter {
  constructor(opts?: EngineServerOptions)
  readonly clients: Map<string, EngineSocket>
  readonly clientsCount: number
  attach(server: import('node:http').Server | import('node:https').Server, opts?: EngineServerOptions): this
  listen(port: number, opts?: EngineServerOptions, fn?: () => void): this
  on(event: 'connection', listener: (socket: EngineSocket) => void): this
  on(event: string, listener: (...args: any[]) => void): this
  close(): this
}

// Only what is exported above is public (HttpServerLike and friends are not).
export {}
