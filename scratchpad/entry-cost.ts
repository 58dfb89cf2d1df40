// How long from `Effect.scoped(Machine.launch(...))` to the launch's own first step, piece by piece (issue 17).
import { Context, Effect, Option } from "effect"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import { withNodeDefaults } from "../src/internal/platform.js"
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!
const r: Record<string, number[]> = { scoped: [], withNodeDefaults: [], all2: [], serviceOption: [], mapInputContext: [] }
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as NodePath from "@effect/platform-node/NodePath"
import { Layer } from "effect"
const defaults = Effect.runSync(Effect.scoped(Layer.build(Layer.merge(NodeFileSystem.layer, NodePath.layer))))
const viaMap = <A, E, R>(e: Effect.Effect<A, E, R>) => Effect.mapInputContext(e, (ctx: Context.Context<never>) => Context.merge(defaults, ctx)) as Effect.Effect<A, E, Exclude<Exclude<R, FileSystem.FileSystem>, Path.Path>>
Effect.runPromise(Effect.gen(function*() {
  for (let i = 0; i < 200; i++) {
    yield* Effect.promise(() => new Promise((res) => setTimeout(res, 5)))
    let t = performance.now()
    yield* Effect.scoped(Effect.sync(() => r.scoped!.push(performance.now() - t)))
    yield* Effect.promise(() => new Promise((res) => setTimeout(res, 5)))
    t = performance.now()
    yield* withNodeDefaults(Effect.sync(() => r.withNodeDefaults!.push(performance.now() - t)))
    yield* Effect.promise(() => new Promise((res) => setTimeout(res, 5)))
    t = performance.now()
    yield* Effect.all([Effect.serviceOption(FileSystem.FileSystem), Effect.serviceOption(Path.Path)])
    r.all2!.push(performance.now() - t)
    yield* Effect.promise(() => new Promise((res) => setTimeout(res, 5)))
    t = performance.now()
    yield* Effect.serviceOption(FileSystem.FileSystem)
    r.serviceOption!.push(performance.now() - t)
    yield* Effect.promise(() => new Promise((res) => setTimeout(res, 5)))
    t = performance.now()
    yield* viaMap(Effect.sync(() => r.mapInputContext!.push(performance.now() - t)))
  }
  console.log(Object.fromEntries(Object.entries(r).map(([k, v]) => [k, med(v.slice(50)).toFixed(3)])))
  void Context; void Option
}))
