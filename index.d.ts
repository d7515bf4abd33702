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
}

export interface SSLAppOptions extends AppOptions {
  key_file_name?: string
  cert_file_name?: string
  /** PEM contents instead of file names (ferrosocket extension). */
  key?: string | Buffer
  cert?: string | Buffer
  /** Encrypted keys are refused with a clear error; decrypt them first. */
  passphrase?: string
}

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
  getParameter(index: number | string): string | undefined
  setYield(yield: boolean): HttpRequest
}

export interface HttpResponse {
  writeStatus(status: RecognizedString): HttpResponse
  writeHeader(key: RecognizedString, value: RecognizedString): HttpResponse
  write(chunk: RecognizedString): boolean
  /** Sends the response; the connection is closed after it. */
  end(body?: RecognizedString, closeConnection?: boolean): HttpResponse
  endWithoutBody(): HttpResponse
  tryEnd(fullBodyOrChunk: RecognizedString, totalSize: number): [boolean, boolean]
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
  /** Accepted for compatibility; permessage-deflate is not negotiated. */
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
  listen(host: RecognizedString, port: number, cb: (listenSocket: us_listen_socket | false) => unknown): TemplatedApp
  listen(port: number, cb: (listenSocket: us_listen_socket | false) => unknown): TemplatedApp
  listen(port: number, options: number, cb: (listenSocket: us_listen_socket | false) => unknown): TemplatedApp
  /** Publishes to every subscriber of `topic`; true when at least one got it. */
  publish(topic: RecognizedString, message: RecognizedString, isBinary?: boolean, compress?: boolean): boolean
  numSubscribers(topic: RecognizedString): number
  /** Closes listeners and every connection (1001); afterwards Node can exit. */
  close(): TemplatedApp
}

export function App(options?: AppOptions): TemplatedApp
export function SSLApp(options: SSLAppOptions): TemplatedApp
export function us_listen_socket_close(listenSocket: us_listen_socket): void
export function us_socket_local_port(listenSocket: us_listen_socket): number
export const DISABLED: number
export const SHARED_COMPRESSOR: number
export const DEDICATED_COMPRESSOR_3KB: number
export function version(): string

// ---- Socket.IO server (Engine.IO long-polling and WebSocket) --------------

import type { EventEmitter } from 'node:events'

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

export interface ServerOptions {
  /** Default '/socket.io'. */
  path?: string
  /** Engine.IO heartbeat, in ms (defaults 25000 / 20000), run in Rust. */
  pingInterval?: number
  pingTimeout?: number
  /** Largest message accepted, in bytes (default 1e6). */
  maxHttpBufferSize?: number
  /** ms a client may stay connected without joining a namespace (default 45000). */
  connectTimeout?: number
  /** ms a WebSocket probe may take to complete the upgrade from polling (default 10000). */
  upgradeTimeout?: number
  /** Let polling clients upgrade to WebSocket (default true). */
  allowUpgrades?: boolean
  /** Default ['polling', 'websocket']. */
  transports?: Array<'polling' | 'websocket'>
  /** Options of the `cors` package; also applied to the Origin of WebSocket upgrades. */
  cors?: CorsOptions
  /** Decides each handshake request (polling and WebSocket): `cb(errorMessage, allowed)`. */
  allowRequest?: (req: import('node:http').IncomingMessage, cb: (err: string | null | undefined, success: boolean) => void) => void
  /** Serve /socket.io/socket.io.js and friends (default true). */
  serveClient?: boolean
  /** Close upgrade requests for other paths after destroyUpgradeTimeout ms (default true, 1000). */
  destroyUpgrade?: boolean
  destroyUpgradeTimeout?: number
  /** Interface to listen on when given a port (default: all; ferrosocket extension). */
  host?: string
  /** I/O worker threads (default: one per core; ferrosocket extension). */
  workers?: number
}

export interface Handshake {
  headers: Record<string, string>
  time: string
  address: string
  xdomain: boolean
  secure: boolean
  issued: number
  url: string
  query: Record<string, string>
  auth: Record<string, unknown>
}

export declare class BroadcastOperator {
  to(room: string | string[]): BroadcastOperator
  in(room: string | string[]): BroadcastOperator
  except(room: string | string[]): BroadcastOperator
  compress(compress: boolean): BroadcastOperator
  readonly volatile: BroadcastOperator
  readonly local: BroadcastOperator
  /** Acks of a broadcast arrive as (err, responses) within `ms`. */
  timeout(ms: number): BroadcastOperator
  /** Encoded once, framed once in Rust for every recipient; a trailing function gets (err, responses). */
  emit(event: string, ...args: unknown[]): boolean
  emitWithAck(event: string, ...args: unknown[]): Promise<unknown[]>
  send(...args: unknown[]): boolean
  fetchSockets(): Promise<Socket[]>
  socketsJoin(room: string | string[]): void
  socketsLeave(room: string): void
  disconnectSockets(close?: boolean): void
}

export declare class Socket extends EventEmitter {
  readonly id: string
  readonly nsp: Namespace
  readonly server: Server
  readonly handshake: Handshake
  readonly rooms: Set<string>
  readonly connected: boolean
  readonly disconnected: boolean
  /** The Engine.IO session: its current transport ('polling' until upgraded). */
  readonly conn: { readonly transport: { readonly name: 'polling' | 'websocket' }, readonly readyState: string }
  data: Record<string, unknown>
  /** Sends to this client (binary values anywhere in the args travel as attachments); a trailing function receives the client's ack. */
  emit(event: string, ...args: unknown[]): boolean
  send(...args: unknown[]): boolean
  emitWithAck(event: string, ...args: unknown[]): Promise<unknown>
  timeout(ms: number): { emit(event: string, ...args: unknown[]): boolean; emitWithAck(event: string, ...args: unknown[]): Promise<unknown> }
  join(rooms: string | string[]): void
  leave(room: string): void
  to(room: string | string[]): BroadcastOperator
  in(room: string | string[]): BroadcastOperator
  except(room: string | string[]): BroadcastOperator
  readonly broadcast: BroadcastOperator
  disconnect(close?: boolean): this
  onAny(listener: (event: string, ...args: unknown[]) => void): this
  prependAny(listener: (event: string, ...args: unknown[]) => void): this
  offAny(listener?: (event: string, ...args: unknown[]) => void): this
  listenersAny(): Array<(event: string, ...args: unknown[]) => void>
  onAnyOutgoing(listener: (event: string, ...args: unknown[]) => void): this
  prependAnyOutgoing(listener: (event: string, ...args: unknown[]) => void): this
  offAnyOutgoing(listener?: (event: string, ...args: unknown[]) => void): this
  listenersAnyOutgoing(): Array<(event: string, ...args: unknown[]) => void>
  /** Packet middleware; `next(err)` emits 'error' on the socket instead of delivering. */
  use(fn: (packet: [string, ...unknown[]], next: (err?: Error) => void) => void): this
}

/** Room targeting shared by a namespace and the server (which targets `/`). */
export interface RoomTargets {
  to(room: string | string[]): BroadcastOperator
  in(room: string | string[]): BroadcastOperator
  except(room: string | string[]): BroadcastOperator
  fetchSockets(): Promise<Socket[]>
  socketsJoin(room: string | string[]): void
  socketsLeave(room: string): void
  disconnectSockets(close?: boolean): void
  timeout(ms: number): BroadcastOperator
  emitWithAck(event: string, ...args: unknown[]): Promise<unknown[]>
  /** Other servers of a cluster: none on a single node (acks get []). */
  serverSideEmit(event: string, ...args: unknown[]): boolean
  serverSideEmitWithAck(event: string, ...args: unknown[]): Promise<unknown[]>
}

export interface Namespace extends RoomTargets {}
export declare class Namespace extends EventEmitter {
  readonly name: string
  readonly server: Server
  readonly sockets: Map<string, Socket>
  readonly adapter: { rooms: Map<string, Set<string>>, sids: Map<string, Set<string>> }
  use(fn: (socket: Socket, next: (err?: Error & { data?: unknown }) => void) => void): this
  /** Broadcast to every socket of the namespace. */
  emit(event: string, ...args: unknown[]): boolean
}

export interface Server extends RoomTargets {}
/** socket.io's Server: long-polling and WebSocket, on a Node http(s) server given or created. */
export declare class Server extends EventEmitter {
  constructor(port?: number, opts?: ServerOptions)
  constructor(opts?: ServerOptions)
  constructor(srv: import('node:http').Server | import('node:https').Server, opts?: ServerOptions)
  readonly sockets: Namespace
  /** The Engine.IO side: open sessions, and 'connection_error' / 'headers' / 'initial_headers' events. */
  readonly engine: EventEmitter & { readonly clientsCount: number }
  /** The Node HTTP server in use (created by `listen(port)` when not given). */
  readonly httpServer: import('node:http').Server | import('node:https').Server | null
  /** The port listened on (useful after `listen(0)`; ferrosocket extension). */
  readonly port: number | undefined
  listen(srv?: number | import('node:http').Server | import('node:https').Server, opts?: ServerOptions): this
  attach(srv?: number | import('node:http').Server | import('node:https').Server, opts?: ServerOptions): this
  /** A namespace, or a dynamic parent (RegExp, or a function deciding by name and auth). */
  of(name: string | RegExp | ((name: string, auth: Record<string, unknown>, next: (err: Error | null, ok: boolean) => void) => void)): Namespace
  use(fn: (socket: Socket, next: (err?: Error & { data?: unknown }) => void) => void): this
  on(event: 'connection' | 'connect', listener: (socket: Socket) => void): this
  on(event: string, listener: (...args: any[]) => void): this
  /** Broadcast to every socket of `/`. */
  emit(event: string, ...args: unknown[]): boolean
  close(fn?: () => void): void
}

export interface EngineServerOptions {
  /** Default '/engine.io'. */
  path?: string
  pingInterval?: number
  pingTimeout?: number
  maxHttpBufferSize?: number
  upgradeTimeout?: number
  allowUpgrades?: boolean
  transports?: Array<'polling' | 'websocket'>
  cors?: CorsOptions
  allowRequest?: (req: import('node:http').IncomingMessage, cb: (err: string | null | undefined, success: boolean) => void) => void
  workers?: number
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
