import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as FileSystem from "@effect/platform/FileSystem"
import { Effect } from "effect"
import * as Files from "../src/internal/files.js"
import * as TempFiles from "../src/TempFiles.js"
import * as NodePath from "@effect/platform-node/NodePath"

const time = (label: string, effect: Effect.Effect<unknown, unknown, any>, n = 200) => Effect.gen(function*() {
  for (let i = 0; i < 20; i++) yield* effect
  const t0 = performance.now()
  for (let i = 0; i < n; i++) yield* effect
  console.log(label.padEnd(40), ((performance.now() - t0) / n).toFixed(3), "ms")
})
Effect.runPromise(Effect.gen(function*() {
  const fs = yield* FileSystem.FileSystem
  yield* time("fs.exists(setpriv)", fs.exists("/usr/bin/setpriv"))
  yield* time("TempFiles.make + remove", Effect.scoped(TempFiles.make()))
  yield* time("makeTempDirectory + remove", Effect.scoped(fs.makeTempDirectoryScoped({ prefix: "qm-x-" })))
  yield* time("createPrivate + close", Effect.scoped(Effect.flatMap(fs.makeTempDirectoryScoped({ prefix: "qm-y-" }), (d) => Files.createPrivate(`${d}/x.log`))))
  const d = yield* Effect.scoped(fs.makeTempDirectory({ prefix: "qm-z-" }))
  yield* fs.writeFileString(`${d}/log`, "")
  yield* time("readTail(empty)", Files.readTail(`${d}/log`, 1 << 24))
  yield* fs.remove(d, { recursive: true })
}).pipe(Effect.provide(NodeFileSystem.layer), Effect.provide(NodePath.layer)))
