/**
 * Platform services with Node's as defaults: a user's `FileSystem` or `Path`
 * layer wins; without one, Node's is used, so `Machine.launch` needs no
 * layers at all.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as NodePath from "@effect/platform-node/NodePath"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"

let node: Context.Context<FileSystem.FileSystem | Path.Path> | undefined

/** Node's services, built once, on first use. */
const nodeServices = () =>
  node ??= Effect.runSync(Effect.scoped(Layer.build(Layer.merge(NodeFileSystem.layer, NodePath.layer))))

/**
 * Runs `effect` with the caller's `FileSystem` and `Path` if provided, else
 * Node's. One read of the context and at most one change of it: a launch
 * starts here, and each Effect step costs most when the process has just
 * been idle (docs/performance.md).
 */
export const withNodeDefaults = <A, E, R>(
  effect: Effect.Effect<A, E, R>
): Effect.Effect<A, E, Exclude<Exclude<R, FileSystem.FileSystem>, Path.Path>> =>
  Effect.contextWithEffect((context: Context.Context<Exclude<Exclude<R, FileSystem.FileSystem>, Path.Path>>) =>
    Option.isSome(Context.getOption(context, FileSystem.FileSystem)) && Option.isSome(Context.getOption(context, Path.Path))
      ? effect as Effect.Effect<A, E, Exclude<Exclude<R, FileSystem.FileSystem>, Path.Path>>
      // The caller's own services win over Node's.
      : Effect.provide(effect, Context.merge(nodeServices(), context) as Context.Context<R>)
  )

/** Is this Node's file system as `withNodeDefaults` supplies it (a known one, whose calls here do not wait)? */
export const isNodeFileSystem = (fs: FileSystem.FileSystem): boolean =>
  fs === Context.get(nodeServices(), FileSystem.FileSystem)
