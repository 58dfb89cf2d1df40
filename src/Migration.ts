/**
 * Live migration between two machines: capabilities on both, `migrate-incoming`
 * on the destination (started with `-incoming defer`), `migrate` on the
 * source, completion followed on both sides through `MIGRATION` events.
 *
 * ```ts
 * const source = yield* Machine.launch(config)
 * const destination = yield* Machine.launch({ ...config, args: [...config.args, "-incoming", "defer"] })
 * yield* Migration.migrate(yield* source.qmp, yield* destination.qmp, { uri: `unix:${dir}/migration.sock` })
 * // the guest now runs on the destination; the source is in `postmigrate`
 * ```
 *
 * @module
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { type QMPDecodeError, QMPTimeout } from "./Errors.js"
import * as Tracing from "./internal/tracing.js"
import type * as QmpClient from "./QmpClient.js"

/** The migration failed or was cancelled, on one side or the other. */
export class MigrationFailed extends Schema.TaggedError<MigrationFailed>()("MigrationFailed", {
  side: Schema.Literal("source", "destination"),
  status: Schema.String,
  /** QEMU's `error-desc`, when it gave one. */
  error: Schema.String
}) {
  override get message(): string {
    return `migration failed on the ${this.side} (${this.status}): ${this.error}`
  }
}

/** Where a migration is, from the source's `query-migrate`. */
export interface MigrationProgress {
  readonly status: string
  /** RAM bytes sent so far, and in all. */
  readonly transferred: number
  readonly total: number
  readonly remaining: number
}

/** Options of `migrate`. */
export interface MigrateOptions {
  /** Where the destination listens: `unix:PATH`, `tcp:HOST:PORT`, `exec:...`. */
  readonly uri: string
  /** Extra capabilities for both sides (`events` is always on). */
  readonly capabilities?: Readonly<Record<string, boolean>> | undefined
  /** How long the whole migration may take; past it, it is cancelled. Default none. */
  readonly timeout?: Duration.DurationInput | undefined
}

/** Errors of `migrate`. */
export type MigrateError = QmpClient.CommandError | QMPDecodeError | QMPTimeout | MigrationFailed

const FINAL = new Set(["completed", "failed", "cancelled"])

/**
 * Migrates the source's guest to the destination and waits until both sides
 * say `completed`. A failure on either side is `MigrationFailed` with QEMU's
 * reason; interrupted or timed out, the source's migration is cancelled.
 */
export const migrate = (
  source: QmpClient.QmpClientService,
  destination: QmpClient.QmpClientService,
  options: MigrateOptions
): Effect.Effect<void, MigrateError> =>
  Effect.scoped(Effect.gen(function*() {
    const capabilities = Object.entries({ ...options.capabilities, events: true }).map(([capability, state]) => ({
      capability: capability as "events",
      state
    }))
    yield* destination.execute("migrate-set-capabilities", { capabilities })
    yield* source.execute("migrate-set-capabilities", { capabilities })
    // Subscribed before anything starts: a small guest migrates within milliseconds.
    const sourceEvents = yield* source.subscribeNamed("MIGRATION")
    const destinationEvents = yield* destination.subscribeNamed("MIGRATION")
    let finished = false
    yield* Effect.addFinalizer(() => finished ? Effect.void : Effect.ignore(source.executeRaw("migrate_cancel")))
    yield* destination.execute("migrate-incoming", { uri: options.uri })
    yield* source.execute("migrate", { uri: options.uri })

    const follow = (side: "source" | "destination", qmp: QmpClient.QmpClientService, events: typeof sourceEvents) =>
      Effect.gen(function*() {
        for (;;) {
          const event = yield* events.take
          if (Option.isNone(event)) {
            return yield* new MigrationFailed({
              side,
              status: "disconnected",
              error: `the ${side} QEMU closed its monitor (a destination exits when loading the state fails)`
            })
          }
          const status = event.value.data.status
          if (!FINAL.has(status)) continue
          if (status === "completed") return
          // A failed destination may be exiting already: its reason is then only in its log.
          const info = yield* Effect.option(qmp.execute("query-migrate"))
          const reason = Option.flatMap(info, (i) => Option.fromNullable(i["error-desc"]))
          return yield* new MigrationFailed({ side, status, error: Option.getOrElse(reason, () => status) })
        }
      })
    // Both sides to their end: when the destination fails, the source may fail too (its connection
    // broke) or complete (it sent everything); the destination's reason is the one that explains.
    const both = Effect.all([follow("source", source, sourceEvents), follow("destination", destination, destinationEvents)], {
      concurrency: 2,
      mode: "either"
    }).pipe(
      Effect.flatMap(([fromSource, fromDestination]) =>
        Either.isLeft(fromDestination)
          ? Effect.fail(fromDestination.left)
          : Either.isLeft(fromSource)
          ? Effect.fail(fromSource.left)
          : Effect.void
      )
    )
    yield* options.timeout === undefined ? both : Effect.timeoutFail(both, {
      duration: options.timeout,
      onTimeout: () => new QMPTimeout({ operation: "migration", timeoutMillis: Duration.toMillis(Duration.decode(options.timeout!)) })
    })
    finished = true
  })).pipe(Tracing.withSpan("Migration.migrate", { attributes: { "migration.uri": options.uri } }))

/**
 * The source's progress every `interval` (default 100 ms), from
 * `query-migrate`: from the migration's start (a stream started before it
 * waits) to its end.
 */
export const progress = (
  source: QmpClient.QmpClientService,
  interval: Duration.DurationInput = Duration.millis(100)
): Stream.Stream<MigrationProgress, QmpClient.CommandError | QMPDecodeError> =>
  Stream.repeatEffectWithSchedule(
    Effect.map(source.execute("query-migrate"), (info): MigrationProgress => ({
      status: info.status ?? "none",
      transferred: info.ram?.transferred ?? 0,
      total: info.ram?.total ?? 0,
      remaining: info.ram?.remaining ?? 0
    })),
    Schedule.spaced(interval)
  ).pipe(
    // Started before the migration, it waits for it (status "none" until `migrate`).
    Stream.dropWhile((p) => p.status === "none" || p.status === "setup"),
    Stream.takeUntil((p) => FINAL.has(p.status))
  )
