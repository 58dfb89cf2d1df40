/**
 * docs/devices.md's examples for port forwards, the flight recorder,
 * schema-derived fakes and KVM, run as a user would (`npx tsx examples/…`):
 * each must exit 0, print nothing on stderr, and print what the doc says.
 */
import { expect, it } from "@effect/vitest"
import { describeQemu, runExample } from "../helpers.js"

describeQemu("docs/devices.md examples", () => {
  it("port-forward.ts: real loopback ports read back, and a typed error for a port with no forward", async () => {
    const { code, stderr, stdout } = await runExample("examples/port-forward.ts", 60_000)
    expect(stderr).toBe("")
    expect(code).toBe(0)
    const ports = /^ssh: 127\.0\.0\.1:(\d+), dns: 127\.0\.0\.1:(\d+)\/udp\n/.exec(stdout)
    expect(ports).not.toBeNull()
    expect(stdout).toContain(`tcp 127.0.0.1:${ports![1]} -> guest port 22\n`)
    expect(stdout).toContain(`udp 127.0.0.1:${ports![2]} -> guest port 53\n`)
    expect(stdout).toContain("PortForwardNotFound: no tcp host forward to guest port 443")
  }, 70_000)

  it("flight-record.ts: the refused command's error renders its record, the secret redacted", async () => {
    const { code, stderr, stdout } = await runExample("examples/flight-record.ts", 60_000)
    expect(stderr).toBe("")
    expect(code).toBe(0)
    expect(stdout).toMatch(/^QMP command device_del failed: DeviceNotFound: /)
    expect(stdout).toMatch(/--- flight record: qemu-\d+-1 \(pid \d+\), /)
    expect(stdout).toContain("data=<redacted>")
    expect(stdout).not.toContain("hunter2")
    expect(stdout).toMatch(/-> \{"execute":"device_del","arguments":\{"id":"no-such-device"\},"id":3\}/)
    expect(stdout).toContain("  | No bootable device")
    expect(stdout).toContain("--- end of flight record ---")
  }, 70_000)

  it("fake-qmp-generated.ts: typed generated answers and a generated event, no QEMU", async () => {
    const { code, stderr, stdout } = await runExample("examples/fake-qmp-generated.ts", 60_000)
    expect(stderr).toBe("")
    expect(code).toBe(0)
    expect(stdout).toMatch(/^seed 7: [\w-]+, running: (true|false), \d+ vCPU\(s\)\n/)
    expect(stdout).toMatch(/\nevent: BLOCK_JOB_ERROR \{"device":".*","operation":"(read|write)","action":"\w+"/)
  }, 70_000)

  it("kvm.ts: the probe's verdict and the accelerator auto picked agree", async () => {
    const { code, stderr, stdout } = await runExample("examples/kvm.ts", 60_000)
    expect(stderr).toBe("")
    expect(code).toBe(0)
    const verdict = /^KVM runs a guest here: (true|false) /.exec(stdout)
    expect(verdict).not.toBeNull()
    expect(stdout).toContain(`launched with -accel ${verdict![1] === "true" ? "kvm" : "tcg"}\n`)
    expect(stdout).toMatch(/query-kvm: present (true|false), enabled (true|false)\n/)
  }, 70_000)
})
