/**
 * Exporting a machine's spans to OpenTelemetry (docs/observability.md).
 * Compiled by `npm run check`; run it with `npx tsx examples/opentelemetry.ts`.
 */
import { NodeSdk } from "@effect/opentelemetry"
import { BatchSpanProcessor, ConsoleSpanExporter } from "@opentelemetry/sdk-trace-base"
import { Effect } from "effect"
import { Machine } from "../src/index.js" // from "qemu-machine" in your project

// Any OpenTelemetry exporter: OTLP to a collector, Jaeger, ... The console one prints each span.
const Observability = NodeSdk.layer(() => ({
  resource: { serviceName: "vm-tests" },
  spanProcessor: new BatchSpanProcessor(new ConsoleSpanExporter())
}))

const program = Effect.gen(function*() {
  const vm = yield* Machine.launch({ machineType: "none", args: ["-nodefaults"] })
  const qmp = yield* vm.qmp
  yield* vm.executeAndWait("stop", undefined, "STOP")
  yield* qmp.execute("query-status")
}).pipe(
  Effect.scoped,
  // The machine's spans (launch phases, each QMP command, the shutdown) nest under this one.
  Effect.withSpan("pause a VM")
)

Effect.runPromise(program.pipe(Effect.provide(Observability)))
