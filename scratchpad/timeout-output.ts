// Does a launch that times out carry QEMU's output when the log lives in the temp dir? (found in issue 17 work)
import { Effect } from "effect"
import * as Machine from "../src/Machine.js"
Effect.runPromise(Effect.gen(function*() {
  const error = yield* Effect.scoped(Machine.launch({
    wrapper: ["sh", "-c", "echo hello-from-qemu >&2; sleep 30", "silent-qemu"], launchTimeout: "1 second"
  })).pipe(Effect.flip)
  console.log(JSON.stringify({ tag: error._tag, reason: (error as any).reason, output: (error as any).output }))
}))
