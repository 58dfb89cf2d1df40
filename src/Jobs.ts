/**
 * Block jobs (mirror, backup, stream, commit, create, ...) run to their end:
 * start, follow `JOB_STATUS_CHANGE` to `concluded`, read the job's error,
 * dismiss it.
 *
 * ```ts
 * yield* Jobs.runJob(qmp, "m0", qmp.execute("blockdev-mirror", {
 *   "job-id": "m0", device: "src", target: "dst", sync: "full", "auto-dismiss": false
 * }), { complete: true })   // a mirror waits in `ready` until job-complete
 * ```
 *
 * QEMU sends no progress events: `progress` polls `query-jobs`.
 *
 * @module
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { type QMPDecodeError, QMPDisconnected, QMPTimeout } from "./Errors.js"
import * as Tracing from "./internal/tracing.js"
import type * as QmpClient from "./QmpClient.js"

/** A job ended with an error (QEMU's `error` from `query-jobs`), or was cancelled. */
export class JobFailed extends Schema.TaggedError<JobFailed>()("JobFailed", {
  id: Schema.String,
  type: Schema.String,
  /** QEMU's error text, or why the job did not finish. */
  error: Schema.String,
  /** The statuses the job went through, in order. */
  statuses: Schema.Array(Schema.String)
}) {
  override get message(): string {
    return `job ${this.id} (${this.type}) failed: ${this.error} [${this.statuses.join(" → ")}]`
  }
}

/** Where a job is, from `query-jobs`. */
export interface JobProgress {
  readonly id: string
  readonly type: string
  readonly status: string
  readonly current: number
  readonly total: number
}

/** What a job did. */
export interface JobResult {
  readonly id: string
  readonly type: string
  /** The statuses the job went through, in order (`created`, `running`, `ready`, ..., `concluded`). */
  readonly statuses: ReadonlyArray<string>
  readonly current: number
  readonly total: number
}

/** Options of `runJob`. */
export interface RunJobOptions {
  /** Send `job-complete` when the job is `ready` (mirror, commit of the active layer). Default false: wait. */
  readonly complete?: boolean | undefined
  /** How long the whole job may take; past it, the job is cancelled and `QMPTimeout` returned. Default none. */
  readonly timeout?: Duration.DurationInput | undefined
}

/** Errors of `runJob`. */
export type RunJobError = QmpClient.CommandError | QMPDecodeError | QMPTimeout | JobFailed

/**
 * Starts a job with `start` (a command naming `jobId`; pass `auto-dismiss:
 * false` where the command takes it, so its error can be read) and follows it
 * to its end. A job that concludes with an error, or is cancelled, fails with
 * `JobFailed`; the concluded job is dismissed either way. Interrupted or timed
 * out, the job is cancelled.
 */
export const runJob = <E>(
  qmp: QmpClient.QmpClientService,
  jobId: string,
  start: Effect.Effect<unknown, E>,
  options: RunJobOptions = {}
): Effect.Effect<JobResult, RunJobError | E> =>
  Effect.scoped(Effect.gen(function*() {
    // Subscribed before the start: a fast job can conclude before the command's reply.
    const events = yield* qmp.subscribeNamed("JOB_STATUS_CHANGE")
    const statuses: Array<string> = []
    let done = false
    yield* Effect.addFinalizer(() =>
      done ? Effect.void : Effect.ignore(qmp.executeRaw("job-cancel", { id: jobId, force: true }))
    )
    yield* start
    const follow = Effect.gen(function*() {
      for (;;) {
        const event = yield* events.take
        if (Option.isNone(event)) {
          return yield* new QMPDisconnected({ reason: "Eof", detail: `QMP ended while job ${jobId} ran` })
        }
        if (event.value.data.id !== jobId) continue
        const status = event.value.data.status
        statuses.push(status)
        if (status === "ready" && options.complete === true) yield* qmp.execute("job-complete", { id: jobId })
        if (status === "concluded") return
      }
    })
    yield* options.timeout === undefined ? follow : Effect.timeoutFail(follow, {
      duration: options.timeout,
      onTimeout: () =>
        new QMPTimeout({ operation: `job ${jobId}`, timeoutMillis: Duration.toMillis(Duration.decode(options.timeout!)) })
    })
    done = true
    const info = (yield* qmp.execute("query-jobs")).find((job) => job.id === jobId)
    yield* Effect.ignore(qmp.execute("job-dismiss", { id: jobId }))
    const type = info?.type ?? "unknown"
    const cancelled = statuses.includes("aborting") && info?.error === undefined
    if (info?.error !== undefined || cancelled) {
      return yield* new JobFailed({ id: jobId, type, error: info?.error ?? "cancelled", statuses })
    }
    return { id: jobId, type, statuses, current: info?.["current-progress"] ?? 0, total: info?.["total-progress"] ?? 0 }
  })).pipe(Tracing.withSpan("Jobs.runJob", { attributes: { "job.id": jobId } }))

/**
 * A job's progress every `interval` (default 100 ms), from `query-jobs`,
 * until it concludes or is gone.
 */
export const progress = (
  qmp: QmpClient.QmpClientService,
  jobId: string,
  interval: Duration.DurationInput = Duration.millis(100)
): Stream.Stream<JobProgress, QmpClient.CommandError | QMPDecodeError> =>
  Stream.repeatEffectWithSchedule(
    Effect.map(qmp.execute("query-jobs"), (jobs) => {
      const job = jobs.find((j) => j.id === jobId)
      return job === undefined ? Option.none<JobProgress>() : Option.some({
        id: job.id,
        type: job.type,
        status: job.status,
        current: job["current-progress"],
        total: job["total-progress"]
      })
    }),
    Schedule.spaced(interval)
  ).pipe(
    Stream.takeWhile(Option.isSome),
    Stream.map((p) => p.value),
    Stream.takeUntil((p) => p.status === "concluded" || p.status === "null")
  )
