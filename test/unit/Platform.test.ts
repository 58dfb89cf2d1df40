/**
 * `withNodeDefaults`: what a launch runs with. A caller's `FileSystem` and
 * `Path` win; whichever is missing is Node's.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { withNodeDefaults } from "../../src/internal/platform.js"

const seen = Effect.all({ fs: FileSystem.FileSystem, path: Path.Path })
const customFs = FileSystem.makeNoop({})
/** Only its identity and `sep` are looked at. */
const customPath = { sep: "|" } as unknown as Path.Path

describe("internal/platform withNodeDefaults", () => {
  it.effect("without services provided, Node's are used", () =>
    Effect.gen(function*() {
      const { fs, path } = yield* withNodeDefaults(seen)
      expect(fs).not.toBe(customFs)
      expect(path.sep).toBe("/")
      expect(yield* fs.exists("/")).toBe(true)
    }))

  it.effect("a caller's FileSystem wins; Path is Node's", () =>
    Effect.gen(function*() {
      const { fs, path } = yield* withNodeDefaults(seen).pipe(Effect.provideService(FileSystem.FileSystem, customFs))
      expect(fs).toBe(customFs)
      expect(path.sep).toBe("/")
    }))

  it.effect("a caller's Path wins; FileSystem is Node's", () =>
    Effect.gen(function*() {
      const { fs, path } = yield* withNodeDefaults(seen).pipe(Effect.provideService(Path.Path, customPath))
      expect(path).toBe(customPath)
      expect(yield* fs.exists("/")).toBe(true)
    }))

  it.effect("both provided: both the caller's", () =>
    Effect.gen(function*() {
      const { fs, path } = yield* withNodeDefaults(seen).pipe(
        Effect.provideService(FileSystem.FileSystem, customFs),
        Effect.provideService(Path.Path, customPath)
      )
      expect(fs).toBe(customFs)
      expect(path).toBe(customPath)
    }))
})
