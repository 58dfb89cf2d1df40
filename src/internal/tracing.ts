/**
 * Spans only when someone can see them. Effect's built-in tracer (the one a
 * program has when it provides none) keeps spans to the fiber that makes
 * them, and making one is a real part of a short operation's cost: a QMP
 * command allocated 39 KB with its span, 17 KB without. So the library's
 * spans are made only when another tracer (OpenTelemetry, a test's recorder)
 * is installed.
 */
import * as Effect from "effect/Effect"
import type * as Tracer from "effect/Tracer"

/** The tracer a fiber has when no other was provided. */
export const builtIn: Tracer.Tracer = Effect.runSync(Effect.tracer)

/** `Effect.withSpan`, skipped under the built-in tracer. */
export const withSpan = (name: string, options?: Tracer.SpanOptions) =>
<A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.tracerWith((tracer) => tracer === builtIn ? self : Effect.withSpan(self, name, options))

/**
 * `Effect.annotateCurrentSpan`, skipped under the built-in tracer: the
 * library makes no spans of its own there, so the annotation would land on
 * whichever span of the caller's is current.
 */
export const annotate = (key: string, value: unknown): Effect.Effect<void> =>
  Effect.tracerWith((tracer) => tracer === builtIn ? Effect.void : Effect.annotateCurrentSpan(key, value))

/**
 * A QMP command's span, with its id and error tag, when `traced` (another
 * tracer than the built-in one is installed): under the built-in tracer
 * nobody can see spans, and a command skips making one (a span is a tenth
 * of a command's allocations).
 */
export const commandSpan = <A, E extends { readonly _tag: string }>(
  command: string,
  traced: boolean,
  id: number | undefined,
  attributes: Readonly<Record<string, unknown>> | undefined,
  effect: Effect.Effect<A, E>
): Effect.Effect<A, E> =>
  traced
    ? effect.pipe(
      Effect.tapError((error) => Effect.annotateCurrentSpan("qmp.error", error._tag)),
      Effect.withSpan(`QMP ${command}`, {
        kind: "client",
        attributes: { ...attributes, "qmp.command": command, ...(id === undefined ? {} : { "qmp.id": id }) },
        // A stack trace per command is the costliest part of a span; the command names the call well enough.
        captureStackTrace: false
      })
    )
    : effect
