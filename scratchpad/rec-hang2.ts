import { Effect } from "effect"
import * as NodeFs from "node:fs"
import * as Machine from "../src/Machine.js"
import * as EchoGuest from "../src/testing/EchoGuest.js"
const chatty = ["sh", "-c", "echo 'wrapper: starting QEMU' >&2; exec \"$@\"", "sh"]
const img = `/tmp/qm-rec-hang-${process.pid}.img`
NodeFs.writeFileSync(img, EchoGuest.image())
const threads = (pid: number) => NodeFs.readdirSync(`/proc/${pid}/task`).map((t) => {
  const comm = NodeFs.readFileSync(`/proc/${pid}/task/${t}/comm`, "utf8").trim()
  const wchan = NodeFs.readFileSync(`/proc/${pid}/task/${t}/wchan`, "utf8").trim()
  const stat = NodeFs.readFileSync(`/proc/${pid}/task/${t}/stat`, "utf8"); const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3)
  return `${comm}:${state}:${wchan}`
}).join(" ")
Effect.runPromise(Effect.gen(function*() {
  for (let round = 0; round < Number(process.argv[2] ?? 10); round++) {
    yield* Effect.scoped(Effect.gen(function*() {
      const useWrapper = process.argv[3] !== "nowrap"
      const base = EchoGuest.machineConfig(img, useWrapper ? { wrapper: chatty } : {})
      const vm = yield* Machine.launch({ ...base, args: [...base.args ?? []], shutdownTimeout: "2 seconds" })
      yield* (yield* vm.console).waitFor(EchoGuest.BANNER, { timeout: "30 seconds" })
      yield* vm.execute("query-status")
      const r = yield* vm.executeRaw("device_add", { driver: "no-such-device" }, { timeout: "10 seconds" }).pipe(Effect.either)
      if (r._tag === "Left") {
        const qemuPid = Number(NodeFs.readFileSync(`/proc/${vm.pid}/task/${vm.pid}/children`, "utf8").trim().split(" ")[0] || vm.pid)
        console.log(`round ${round}: HANG (${r.left._tag}); QEMU threads: ${threads(qemuPid)}`)
        console.log(NodeFs.readFileSync(`/proc/${qemuPid}/stack`, "utf8").split("\n").slice(0, 8).join(" | "))
        console.log("log:", NodeFs.readFileSync(vm.logPath, "utf8").slice(-300))
      } else console.log(`round ${round}: ok`)
    })).pipe(Effect.ignore)
  }
})).finally(() => NodeFs.rmSync(img))
