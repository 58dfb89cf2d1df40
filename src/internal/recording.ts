/**
 * A launched machine's QMP session and console as its users see them: the
 * same services, whose failures carry the machine's flight record
 * (`recorded` attaches it).
 */
import * as Effect from "effect/Effect"
import type * as ConsoleSocket from "../ConsoleSocket.js"
import type * as QmpClient from "../QmpClient.js"
import type { Recorder } from "./recorder.js"

/** Gives an effect's failure the machine's flight record. */
export type Recorded = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>

/** `Recorded` for a recorder; without one (turned off), effects as they are. */
export const recordedBy = (recorder: Recorder | undefined): Recorded =>
  recorder === undefined
    ? (effect) => effect
    : (effect) => Effect.catchAll(effect, (error) => Effect.flatMap(recorder.attach(error), Effect.fail))

/** The session, its commands and waits recorded. */
export const qmp = (client: QmpClient.QmpClientService, recorded: Recorded): QmpClient.QmpClientService => ({
  ...client,
  // Read through: a launch wraps its client before the handshake has filled these in.
  get greeting() {
    return client.greeting
  },
  get capabilities() {
    return client.capabilities
  },
  // One implementation behind the overloads: the typed forms differ only in their static types.
  execute: ((...args: Parameters<QmpClient.QmpClientService["executeRaw"]>) =>
    recorded((client.execute as QmpClient.QmpClientService["executeRaw"])(...args))) as QmpClient.QmpClientService["execute"],
  executeRaw: (...args) => recorded(client.executeRaw(...args)),
  executeAndWait: ((...args: Parameters<typeof client.executeAndWait>) =>
    recorded(client.executeAndWait(...args))) as QmpClient.QmpClientService["executeAndWait"],
  hmp: (...args) => recorded(client.hmp(...args)),
  eventWait: ((...args: Parameters<typeof client.eventWait>) =>
    recorded(client.eventWait(...args))) as QmpClient.QmpClientService["eventWait"],
  eventsWait: (...args) => recorded(client.eventsWait(...args)),
  executeWithFds: (...args) => recorded(client.executeWithFds(...args)),
  getfd: (...args) => recorded(client.getfd(...args)),
  addFd: (...args) => recorded(client.addFd(...args))
})

/** The console, its writes and waits recorded. */
export const console = (
  service: ConsoleSocket.ConsoleSocketService,
  recorded: Recorded
): ConsoleSocket.ConsoleSocketService => ({
  ...service,
  write: (data) => recorded(service.write(data)),
  waitFor: (...args) => recorded(service.waitFor(...args)),
  execAndWait: (...args) => recorded(service.execAndWait(...args)),
  interruptUntil: (...args) => recorded(service.interruptUntil(...args))
})
