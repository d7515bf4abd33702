// Typed events for the Socket.IO server: the type helpers of socket.io 4.8's
// typed-events.d.ts (MIT, (c) Guillermo Rauch and the Socket.IO
// contributors; IsAny, IfAny and Last are from sindresorhus/type-fest, MIT),
// copied so that a ferrosocket server checks emits, listeners and acks
// exactly as socket.io does. Types only: there is no JavaScript behind this
// file, and index.d.ts re-exports what users may name.

import type { EventEmitter } from 'node:events'

/** Event name -> listener signature; a trailing function parameter is the ack. */
export interface EventsMap {
  [event: string]: any
}

/** What an untyped `Server` uses: any event name, any arguments. */
export interface DefaultEventsMap {
  [event: string]: (...args: any[]) => void
}

export type EventNames<Map extends EventsMap> = keyof Map & (string | symbol)

export type EventParams<Map extends EventsMap, Ev extends EventNames<Map>> = Parameters<Map[Ev]>

// The IfAny branches keep DefaultEventsMap permissive: with `any` listeners
// every name counts as both with and without an ack.

/** Events whose last parameter is an ack callback. */
export type EventNamesWithAck<Map extends EventsMap, K extends EventNames<Map> = EventNames<Map>> = IfAny<
  Last<Parameters<Map[K]>> | Map[K],
  K,
  K extends (Parameters<Map[K]> extends never[] ? never : Last<Parameters<Map[K]>> extends (...args: any[]) => any ? K : never) ? K : never
>

/** Events with no ack callback (what a broadcast without timeout() may send). */
export type EventNamesWithoutAck<Map extends EventsMap, K extends EventNames<Map> = EventNames<Map>> = IfAny<
  Last<Parameters<Map[K]>> | Map[K],
  K,
  K extends (Parameters<Map[K]> extends never[] ? K : never)
    ? K
    : K extends (Last<Parameters<Map[K]>> extends (...args: any[]) => any ? never : K) ? K : never
>

export type RemoveAcknowledgements<E extends EventsMap> = {
  [K in EventNamesWithoutAck<E>]: E[K]
}

/** Events whose ack takes an Error first: emitWithAck is only meaningful after timeout(). */
export type EventNamesWithError<Map extends EventsMap, K extends EventNamesWithAck<Map> = EventNamesWithAck<Map>> = IfAny<
  Last<Parameters<Map[K]>> | Map[K],
  K,
  K extends (LooseParameters<Last<Parameters<Map[K]>>>[0] extends Error ? K : never) ? K : never
>

export type ReservedOrUserEventNames<ReservedEventsMap extends EventsMap, UserEvents extends EventsMap> =
  EventNames<ReservedEventsMap> | EventNames<UserEvents>

/** The listener of `Ev`: the reserved one when `Ev` is reserved, else the user's. */
export type ReservedOrUserListener<ReservedEvents extends EventsMap, UserEvents extends EventsMap,
  Ev extends ReservedOrUserEventNames<ReservedEvents, UserEvents>> = FallbackToUntypedListener<
  Ev extends EventNames<ReservedEvents> ? ReservedEvents[Ev] : Ev extends EventNames<UserEvents> ? UserEvents[Ev] : never
>

// TypeScript cannot always narrow the listener of a generic event name
// (microsoft/TypeScript#41778, socketio/socket.io#3833): `never` falls back
// to an untyped listener instead of rejecting every function.
type FallbackToUntypedListener<T> = [T] extends [never] ? (...args: any[]) => void | Promise<void> : T

/** An object with a typed `emit` that is not an EventEmitter (broadcasts, fetched sockets). */
export interface TypedEventBroadcaster<EmitEvents extends EventsMap> {
  emit<Ev extends EventNames<EmitEvents>>(ev: Ev, ...args: EventParams<EmitEvents, Ev>): boolean
}

/**
 * An EventEmitter whose `on`/`once`/`listeners` are typed by `ListenEvents`
 * plus `ReservedEvents` and whose `emit` is typed by `EmitEvents`. At
 * runtime the classes extend Node's EventEmitter directly; this class exists
 * in the types only.
 */
export declare abstract class StrictEventEmitter<ListenEvents extends EventsMap, EmitEvents extends EventsMap,
  ReservedEvents extends EventsMap = {}> extends EventEmitter implements TypedEventBroadcaster<EmitEvents> {
  on<Ev extends ReservedOrUserEventNames<ReservedEvents, ListenEvents>>(ev: Ev,
    listener: ReservedOrUserListener<ReservedEvents, ListenEvents, Ev>): this
  once<Ev extends ReservedOrUserEventNames<ReservedEvents, ListenEvents>>(ev: Ev,
    listener: ReservedOrUserListener<ReservedEvents, ListenEvents, Ev>): this
  emit<Ev extends EventNames<EmitEvents>>(ev: Ev, ...args: EventParams<EmitEvents, Ev>): boolean
  listeners<Ev extends ReservedOrUserEventNames<ReservedEvents, ListenEvents>>(event: Ev):
    ReservedOrUserListener<ReservedEvents, ListenEvents, Ev>[]
}

type IsAny<T> = 0 extends 1 & T ? true : false
type IfAny<T, TypeIfAny = true, TypeIfNotAny = false> = IsAny<T> extends true ? TypeIfAny : TypeIfNotAny

export type Last<ValueType extends readonly unknown[]> =
  ValueType extends readonly [infer ElementType] ? ElementType
    : ValueType extends readonly [infer _, ...infer Tail] ? Last<Tail>
      : ValueType extends ReadonlyArray<infer ElementType> ? ElementType : never

export type AllButLast<T extends any[]> = T extends [...infer H, infer L] ? H : any[]

export type FirstNonErrorTuple<T extends unknown[]> = T[0] extends Error ? T[1] : T[0]

/** What an ack's promise resolves to: its first argument that is not the timeout error. */
export type FirstNonErrorArg<T> = T extends (...args: infer Params) => any ? FirstNonErrorTuple<Params> : any

type LooseParameters<T> = T extends (...args: infer P) => any ? P : never

type PrependTimeoutError<T extends any[]> = {
  [K in keyof T]: T[K] extends (...args: infer Params) => infer Result
    ? Params[0] extends Error ? T[K] : (err: Error, ...args: Params) => Result
    : T[K]
}

export type MultiplyArray<T extends unknown[]> = {
  [K in keyof T]: T[K][]
}

type InferFirstAndPreserveLabel<T extends any[]> = T extends [any, ...infer R] ? T extends [...infer H, ...R] ? H : never : never

// A broadcast ack collects one answer per recipient: (e: number) becomes
// (e: number[]), keeping only the first (non-error) argument.
type ExpectMultipleResponses<T extends any[]> = {
  [K in keyof T]: T[K] extends (...args: infer Params) => infer Result
    ? Params extends [Error] ? (err: Error) => Result
      : Params extends [Error, ...infer Rest] ? (err: Error, ...args: InferFirstAndPreserveLabel<MultiplyArray<Rest>>) => Result
        : Params extends [] ? () => Result
          : (...args: InferFirstAndPreserveLabel<MultiplyArray<Params>>) => Result
    : T[K]
}

/**
 * The acks of `timeout(ms).emit(...)`: the sender's callback gets the
 * timeout error first, which the receiver's ack never passes.
 */
export type DecorateAcknowledgements<E> = {
  [K in keyof E]: E[K] extends (...args: infer Params) => infer Result ? (...args: PrependTimeoutError<Params>) => Result : E[K]
}

export type DecorateAcknowledgementsWithTimeoutAndMultipleResponses<E> = {
  [K in keyof E]: E[K] extends (...args: infer Params) => infer Result
    ? (...args: ExpectMultipleResponses<PrependTimeoutError<Params>>) => Result
    : E[K]
}

export type DecorateAcknowledgementsWithMultipleResponses<E> = {
  [K in keyof E]: E[K] extends (...args: infer Params) => infer Result ? (...args: ExpectMultipleResponses<Params>) => Result : E[K]
}

// Only what is exported above is public.
export {}
