/**
 * Checks a FakeQmp script against a real QEMU: the same commands go to both,
 * and the report says where the fake's answers have another shape (a member
 * missing or extra, another JSON type, an error where QEMU returns) and
 * whether QEMU's own answers match the generated schema. Values are not
 * compared, only shapes: `running: true` and `running: false` agree.
 *
 * ```ts
 * const report = yield* FakeQmpVerify.verify(script, yield* vm.qmp, [
 *   { command: "query-status" },
 *   { command: "query-block" }
 * ])
 * if (!report.ok) console.log(report.render())
 * ```
 *
 * @module
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type * as Scope from "effect/Scope"
import type { QMPConnectError } from "../Errors.js"
import * as Qapi from "../Qapi.js"
import * as QmpClient from "../QmpClient.js"
import type { Arguments, Reply } from "../QmpProtocol.js"
import * as FakeQmp from "./FakeQmp.js"

/** One command of the exchange. */
export interface Exchange {
  readonly command: string
  readonly arguments?: Arguments | undefined
}

/** Where the fake's answer differs in shape from QEMU's. */
export interface Difference {
  /** A path into the answer, e.g. `return.inserted.ro`, or `return[0].id`. */
  readonly path: string
  readonly fake: string
  readonly real: string
}

/** One command, answered by both. */
export interface Verified {
  readonly command: string
  readonly fake: Reply
  readonly real: Reply
  readonly differences: ReadonlyArray<Difference>
  /** Whether QEMU's answer decodes with the generated schema (true for commands outside it). */
  readonly realMatchesSchema: boolean
}

/** The whole comparison. */
export interface VerificationReport {
  readonly results: ReadonlyArray<Verified>
  /** No differences, and every real answer matches the schema. */
  readonly ok: boolean
  /** One line per difference. */
  readonly render: () => string
}

const kind = (value: unknown): string =>
  value === null ? "null" : Array.isArray(value) ? "array" : typeof value

/** The shape differences between two JSON values, by path. */
export const shapeDifferences = (fake: unknown, real: unknown, path = "return"): Array<Difference> => {
  const fakeKind = kind(fake)
  const realKind = kind(real)
  if (fakeKind !== realKind) return [{ path, fake: fakeKind, real: realKind }]
  if (fakeKind === "array") {
    const f = fake as ReadonlyArray<unknown>
    const r = real as ReadonlyArray<unknown>
    return f.length > 0 && r.length > 0 ? shapeDifferences(f[0], r[0], `${path}[0]`) : []
  }
  if (fakeKind !== "object") return []
  const f = fake as Record<string, unknown>
  const r = real as Record<string, unknown>
  return [...new Set([...Object.keys(f), ...Object.keys(r)])].sort().flatMap((key) =>
    !(key in f)
      ? [{ path: `${path}.${key}`, fake: "missing", real: kind(r[key]) }]
      : !(key in r)
      ? [{ path: `${path}.${key}`, fake: kind(f[key]), real: "missing" }]
      : shapeDifferences(f[key], r[key], `${path}.${key}`)
  )
}

const replyDifferences = (fake: Reply, real: Reply): Array<Difference> => {
  const fakeError = "error" in fake
  const realError = "error" in real
  if (fakeError || realError) {
    return fakeError && realError ? [] : [{
      path: "",
      fake: fakeError ? `error ${fake.error.class}` : "return",
      real: realError ? `error ${real.error.class}: ${real.error.desc}` : "return"
    }]
  }
  return shapeDifferences(fake.return, real.return)
}

/**
 * Runs `exchange` against a fake made from `script` and against `real`
 * (a session to a real QEMU), in order, and compares the answers' shapes.
 */
export const verify = <C>(
  script: FakeQmp.FakeQmpScript<C>,
  real: QmpClient.QmpClientService,
  exchange: ReadonlyArray<Exchange>
): Effect.Effect<VerificationReport, QMPConnectError | QmpClient.SessionError | QmpClient.RawCommandError, Scope.Scope> =>
  Effect.gen(function*() {
    const server = yield* FakeQmp.make(script)
    const fake = yield* QmpClient.connect({ path: server.path })
    const results = yield* Effect.forEach(exchange, ({ arguments: args, command }) =>
      Effect.gen(function*() {
        const fakeReply = yield* fake.executeRaw(command, args)
        const realReply = yield* real.executeRaw(command, args)
        const realMatchesSchema = "error" in realReply || !Qapi.isCommand(command) ||
          Either.isRight(yield* Effect.either(Qapi.decodeResult(command, realReply.return)))
        return { command, fake: fakeReply, real: realReply, differences: replyDifferences(fakeReply, realReply), realMatchesSchema }
      }))
    return {
      results,
      ok: results.every((r) => r.differences.length === 0 && r.realMatchesSchema),
      render: () =>
        results.flatMap((r) => [
          ...r.differences.map((d) => `${r.command}: ${d.path || "reply"}: fake ${d.fake}, QEMU ${d.real}`),
          ...(r.realMatchesSchema ? [] : [`${r.command}: QEMU's answer does not match the generated schema`])
        ]).join("\n") || "the fake's answers have QEMU's shapes"
    }
  })
