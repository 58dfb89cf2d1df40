/**
 * `qemu-machine doctor`: what this machine has for the library: QEMU and its
 * version, util-linux `setpriv`, the native helper, a writable temp dir, and
 * whether KVM really runs a guest (decided from a guest that prints within a
 * deadline, never from `/dev/kvm` alone: here it opens, and a guest under it
 * makes no progress). Exits 1 when something required is missing.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Command from "@effect/platform/Command"
import type * as CommandExecutor from "@effect/platform/CommandExecutor"
import type * as Path from "@effect/platform/Path"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as NodeOs from "node:os"
import * as Native from "../internal/native.js"
import * as Machine from "../Machine.js"
import * as TempFiles from "../TempFiles.js"
import type { CommandSpec, Parsed } from "./args.js"
import { findBinary, installHint, qemuOption, setExitCode } from "./common.js"

export const spec: CommandSpec = {
  name: "doctor",
  summary: "check QEMU, setpriv, the native helper, KVM and the temp dir; exit 1 if something required is missing",
  options: [
    qemuOption,
    { name: "json", kind: "flag", description: "one JSON object instead of text" },
    { name: "strict", kind: "flag", description: "exit 1 on warnings too" }
  ]
}

/** One finding: `fail` is something required, `warn` something the library works without. */
export interface Check {
  readonly name: string
  readonly status: "ok" | "warn" | "fail"
  readonly detail: string
}

const KVM_DEADLINE = "5 seconds"

/** Every check, in order. */
export const checks = (
  qemu: string
): Effect.Effect<ReadonlyArray<Check>, never, FileSystem.FileSystem | Path.Path | CommandExecutor.CommandExecutor> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const found = yield* findBinary(qemu)
    const version = Option.isNone(found) ? Option.none<string>() : yield* Command.make(found.value, "--version").pipe(
      Command.string,
      Effect.map((out) => out.split("\n")[0]!.trim()),
      Effect.option
    )
    const results: Array<Check> = [
      Option.isSome(version)
        ? { name: "qemu", status: "ok", detail: `${Option.getOrThrow(found)}: ${version.value}` }
        : { name: "qemu", status: "fail", detail: installHint(qemu).split("\n").join(" ") }
    ]
    const setpriv = yield* fs.exists("/usr/bin/setpriv").pipe(Effect.orElseSucceed(() => false))
    results.push(
      setpriv
        ? { name: "setpriv", status: "ok", detail: "/usr/bin/setpriv: QEMU dies with its parent (--pdeathsig KILL)" }
        : { name: "setpriv", status: "warn", detail: "util-linux setpriv missing: a SIGKILLed Node would leave QEMU running" }
    )
    const native = Native.load()
    results.push(
      native._tag === "Right"
        ? { name: "native helper", status: "ok", detail: "loaded: descriptor passing and monitor peer checks by pid" }
        : {
          name: "native helper",
          status: "warn",
          detail: `not loaded (${native.left}): fd passing fails with FdPassingError Unavailable; ` +
            "rebuild it with `npm rebuild qemu-machine` (needs g++, make, python3)"
        }
    )
    const tmp = yield* Effect.scoped(TempFiles.make()).pipe(Effect.either)
    results.push(
      tmp._tag === "Right"
        ? { name: "temp dir", status: "ok", detail: `${NodeOs.tmpdir()} is writable (private dirs, 0700)` }
        : { name: "temp dir", status: "fail", detail: tmp.left.message }
    )
    const device = yield* fs.access("/dev/kvm", { readable: true, writable: true }).pipe(Effect.either)
    if (device._tag === "Left") {
      results.push({ name: "kvm", status: "warn", detail: "/dev/kvm is not usable: guests run under TCG (the default)" })
    } else if (Option.isNone(version)) {
      results.push({ name: "kvm", status: "warn", detail: "/dev/kvm opens; no QEMU to try it with" })
    } else {
      const verdict = yield* Machine.kvmProbe({ binary: qemu, deadline: KVM_DEADLINE })
      results.push(
        verdict.runs
          ? { name: "kvm", status: "ok", detail: verdict.detail }
          : {
            name: "kvm",
            status: "warn",
            detail: `/dev/kvm opens, but a guest under -accel kvm did not run (${verdict.detail}): use TCG (the default)`
          }
      )
    }
    return results
  })

/** The `doctor` subcommand. */
export const run = (parsed: Parsed) =>
  Effect.gen(function*() {
    const results = yield* checks(parsed.values.get("qemu")!)
    if (parsed.flags.has("json")) yield* Console.log(JSON.stringify({ checks: results }))
    else for (const check of results) yield* Console.log(`${check.status.padEnd(4)}  ${check.name}: ${check.detail}`)
    const failing = results.some((c) => c.status === "fail" || (parsed.flags.has("strict") && c.status === "warn"))
    yield* setExitCode(failing ? 1 : 0)
  })
