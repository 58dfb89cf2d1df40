/**
 * `Effect.acquireRelease` for the launch's own resources (the temp dir, the
 * log, the process, sockets), whose releases need nothing from the fiber
 * that acquired them. The release is added to the scope as it is: Effect's
 * version diffs and patches the fiber refs (the context included) twice
 * around each release, a tenth of a launch → shutdown cycle's allocations,
 * three of them between QEMU's exit and the shutdown's return. A release
 * here runs with the refs of the fiber closing the scope (its log
 * annotations and level).
 */
import * as Effect from "effect/Effect"
import * as Scope from "effect/Scope"

/** Adds `release(a)` to `scope` as it is, and gives `a` back. */
const addReleaseTo = <A>(scope: Scope.Scope, a: A, release: (a: A) => Effect.Effect<void>): Effect.Effect<A> =>
  Effect.as(Scope.addFinalizer(scope, release(a)), a)

/** `addReleaseTo` the current scope. */
const addRelease = <A>(a: A, release: (a: A) => Effect.Effect<void>): Effect.Effect<A, never, Scope.Scope> =>
  Effect.flatMap(Effect.scope, (scope) => addReleaseTo(scope, a, release))

/** Acquires uninterruptibly, and adds `release(a)` to the current scope. */
export const acquireRelease = <A, E, R>(
  acquire: Effect.Effect<A, E, R>,
  release: (a: A) => Effect.Effect<void>
): Effect.Effect<A, E, R | Scope.Scope> =>
  Effect.uninterruptible(Effect.flatMap(acquire, (a) => addRelease(a, release)))

/** `acquireRelease` into a scope given rather than taken from the context. */
export const acquireReleaseIn = <A, E, R>(
  acquire: Effect.Effect<A, E, R>,
  release: (a: A) => Effect.Effect<void>,
  scope: Scope.Scope
): Effect.Effect<A, E, R> =>
  Effect.uninterruptible(Effect.flatMap(acquire, (a) => addReleaseTo(scope, a, release)))

/** `acquireRelease` whose acquisition can be interrupted (a wait for a peer must be). */
export const acquireInterruptibly = <A, E, R>(
  acquire: Effect.Effect<A, E, R>,
  release: (a: A) => Effect.Effect<void>
): Effect.Effect<A, E, R | Scope.Scope> =>
  Effect.uninterruptibleMask((restore) => Effect.flatMap(restore(acquire), (a) => addRelease(a, release)))
