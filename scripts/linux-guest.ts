/**
 * Builds the Linux test guest from Debian packages only, and caches it:
 * Debian's cloud kernel (serial 8250 and devtmpfs built in) and an initramfs
 * of busybox-static whose `/init` starts a root shell (or a getty, for login
 * tests) on ttyS0, with Debian's `qemu-guest-agent` and the libraries it
 * needs, taken from their library packages.
 *
 *   npx tsx scripts/linux-guest.ts          # build (or reuse) and print the paths as JSON
 *
 * The kernel command line chooses at boot: `qga=isa` (agent on /dev/ttyS1,
 * no modules) or `qga=virtio` (loads the virtio modules, finds the
 * `org.qemu.guest_agent.0` port), `shell=login` for a getty with the password
 * `root`. Needs `apt-get download` and `dpkg-deb` (Debian); no root, no
 * network but Debian's mirror, no cpio (the archive is written here).
 */
import { execFileSync } from "node:child_process"
import * as NodeCrypto from "node:crypto"
import * as NodeFs from "node:fs"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import * as NodeZlib from "node:zlib"
import type { MachineConfig } from "../src/MachineConfig.js"

/** Where a built guest is. */
export interface LinuxGuest {
  readonly kernel: string
  readonly initrd: string
  /** The packages it was built from, with their versions. */
  readonly packages: Readonly<Record<string, string>>
}

const LIBRARIES = ["libc6", "libglib2.0-0", "libnuma1", "libudev1", "liburing2", "libpcre2-8-0"]

const candidate = (pkg: string): string => {
  const policy = execFileSync("apt-cache", ["policy", pkg], { encoding: "utf8" })
  const version = /Candidate: (\S+)/.exec(policy)?.[1]
  if (version === undefined || version === "(none)") throw new Error(`apt has no ${pkg}: run apt-get update`)
  return version
}

/** The versioned kernel package behind `linux-image-cloud-amd64`. */
const kernelPackage = (): string => {
  const depends = execFileSync("apt-cache", ["depends", "linux-image-cloud-amd64"], { encoding: "utf8" })
  const name = /Depends: (linux-image-[\d.]+-\d+-cloud-amd64)/.exec(depends)?.[1]
  if (name === undefined) throw new Error("cannot find the kernel behind linux-image-cloud-amd64")
  return name
}

const INIT = `#!/bin/busybox sh
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# With no serial console the kernel starts init with fds 0-2 closed: the agent's port would become fd 0.
[ -e /proc/self/fd/0 ] || exec </dev/null >/dev/null 2>&1
mkdir -p /dev/pts /tmp /var/run /root && mount -t devpts devpts /dev/pts
hostname guest
for word in $(cat /proc/cmdline); do
  case "$word" in qga=*) QGA="\${word#qga=}";; shell=*) SHELL_MODE="\${word#shell=}";; esac
done
if [ "$QGA" = isa ]; then
  qemu-ga -m isa-serial -p /dev/ttyS1 -f /var/run/qemu-ga.pid -t /var/run &
elif [ "$QGA" = virtio ]; then
  for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_console; do
    insmod /lib/modules/$m.ko
  done
  for port in /sys/class/virtio-ports/*; do
    [ "$(cat $port/name 2>/dev/null)" = org.qemu.guest_agent.0 ] && DEVICE=/dev/\${port##*/}
  done
  while [ -n "$DEVICE" ] && [ ! -e "$DEVICE" ]; do sleep 0.05; done
  qemu-ga -m virtio-serial -p "$DEVICE" -f /var/run/qemu-ga.pid -t /var/run &
fi
echo "guest: up"
if [ "$SHELL_MODE" = login ]; then
  # The password root, hashed by the guest's busybox (it has mkpasswd, no chpasswd).
  echo "root:$(mkpasswd -m sha512 root):19000:0:99999:7:::" > /etc/shadow
  # init must not exit (the kernel panics): a getty again after each failed login or logout.
  while :; do setsid getty 0 ttyS0 vt100; done
fi
export HOME=/root PS1='# '
cd /root
# init must not exit: with no console there is no shell to run, only the agent.
[ -t 0 ] || while :; do sleep 3600; done
exec setsid cttyhack sh
`

/** `qemu-ga`'s `guest-shutdown` runs `/sbin/shutdown -P +0 ...`: busybox has poweroff. */
const SHUTDOWN = `#!/bin/sh
sync
exec poweroff -f
`

interface Entry {
  readonly name: string
  readonly mode: number
  readonly data: Buffer
}

/** The `newc` cpio format the kernel reads for an initramfs. */
const cpio = (entries: ReadonlyArray<Entry>): Buffer => {
  const parts: Array<Buffer> = []
  const pad = (length: number) => Buffer.alloc((4 - (length % 4)) % 4)
  let ino = 1
  const header = (entry: Entry) => {
    const fields = [ino++, entry.mode, 0, 0, 1, 0, entry.data.length, 0, 0, 0, 0, entry.name.length + 1, 0]
    return Buffer.from(`070701${fields.map((f) => f.toString(16).padStart(8, "0")).join("")}`, "ascii")
  }
  for (const entry of [...entries, { name: "TRAILER!!!", mode: 0, data: Buffer.alloc(0) }]) {
    const head = Buffer.concat([header(entry), Buffer.from(`${entry.name}\0`)])
    parts.push(head, pad(head.length), entry.data, pad(entry.data.length))
  }
  return Buffer.concat(parts)
}

const DIR = 0o040755
const FILE = (executable: boolean) => executable ? 0o100755 : 0o100644
const LINK = 0o120777

/** Builds the guest into `cacheDir` (reused when its packages have not changed). */
export const build = (cacheDir: string = defaultCacheDir()): LinuxGuest => {
  const kernelPkg = kernelPackage()
  const packages = Object.fromEntries(
    [kernelPkg, "busybox-static", "qemu-guest-agent", ...LIBRARIES].map((pkg) => [pkg, candidate(pkg)])
  )
  const key = NodeCrypto.createHash("sha256").update(JSON.stringify({ packages, INIT, SHUTDOWN })).digest("hex").slice(0, 16)
  const out = NodePath.join(cacheDir, key)
  const guest: LinuxGuest = { kernel: NodePath.join(out, "vmlinuz"), initrd: NodePath.join(out, "initrd.gz"), packages }
  if (NodeFs.existsSync(guest.initrd) && NodeFs.existsSync(guest.kernel)) return guest

  const work = NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), "qm-linux-guest-"))
  try {
    // As root, apt warns that its sandbox user cannot write here: download as whoever runs this.
    execFileSync("apt-get", ["-o", "APT::Sandbox::User=root", "download", ...Object.entries(packages).map(([p, v]) => `${p}=${v}`)], {
      cwd: work,
      stdio: ["ignore", "ignore", "inherit"]
    })
    const root = NodePath.join(work, "root")
    for (const deb of NodeFs.readdirSync(work).filter((f) => f.endsWith(".deb"))) {
      execFileSync("dpkg-deb", ["-x", NodePath.join(work, deb), root])
    }
    const kernelVersion = kernelPkg.replace(/^linux-image-/, "")
    const entries: Array<Entry> = []
    const dir = (name: string) => entries.push({ name, mode: DIR, data: Buffer.alloc(0) })
    const file = (name: string, data: Buffer | string, executable = false) =>
      entries.push({ name, mode: FILE(executable), data: typeof data === "string" ? Buffer.from(data) : data })
    const link = (name: string, target: string) => entries.push({ name, mode: LINK, data: Buffer.from(target) })
    for (const d of ["bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "lib", "lib64", "lib/modules", "lib/x86_64-linux-gnu", "tmp", "root", "var", "var/run"]) dir(d)
    file("init", INIT, true)
    file("bin/busybox", NodeFs.readFileSync(NodePath.join(root, "bin/busybox")), true)
    link("bin/sh", "busybox")
    file("sbin/shutdown", SHUTDOWN, true)
    file("usr/sbin/qemu-ga", NodeFs.readFileSync(NodePath.join(root, "usr/sbin/qemu-ga")), true)
    file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n")
    file("etc/shadow", "root:*:19000:0:99999:7:::\n")
    file("etc/group", "root:x:0:\n")
    // qemu-ga's libraries, from the library packages (not the host), at the paths its ELF asks for.
    const libdirs = ["lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu"].map((d) => NodePath.join(root, d))
    const wanted = ["ld-linux-x86-64.so.2", "libc.so.6", "libm.so.6", "libglib-2.0.so.0", "libgmodule-2.0.so.0", "libpcre2-8.so.0", "libudev.so.1", "libnuma.so.1", "liburing.so.2"]
    for (const lib of wanted) {
      const found = libdirs.map((d) => NodePath.join(d, lib)).find((p) => NodeFs.existsSync(p))
      if (found === undefined) throw new Error(`${lib} is in none of the library packages`)
      const real = NodeFs.realpathSync(found)
      file(`lib/x86_64-linux-gnu/${lib}`, NodeFs.readFileSync(real), true)
    }
    link("lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")
    const modules = NodePath.join(root, "lib/modules", kernelVersion, "kernel/drivers")
    for (const [module, where] of [["virtio_ring", "virtio"], ["virtio", "virtio"], ["virtio_pci_legacy_dev", "virtio"], ["virtio_pci_modern_dev", "virtio"], ["virtio_pci", "virtio"], ["virtio_console", "char"]] as const) {
      file(`lib/modules/${module}.ko`, NodeFs.readFileSync(NodePath.join(modules, where, `${module}.ko`)))
    }
    NodeFs.mkdirSync(out, { recursive: true })
    NodeFs.copyFileSync(NodePath.join(root, "boot", `vmlinuz-${kernelVersion}`), guest.kernel)
    NodeFs.writeFileSync(guest.initrd, NodeZlib.gzipSync(cpio(entries), { level: 6 }))
    NodeFs.writeFileSync(NodePath.join(out, "packages.json"), `${JSON.stringify(packages, null, 2)}\n`)
    return guest
  } finally {
    NodeFs.rmSync(work, { recursive: true, force: true })
  }
}

/** The newest guest already built into `cacheDir`, without apt (tests and benchmarks use this). */
export const cached = (cacheDir: string = defaultCacheDir()): LinuxGuest | undefined => {
  if (!NodeFs.existsSync(cacheDir)) return undefined
  const builds = NodeFs.readdirSync(cacheDir)
    .map((key) => NodePath.join(cacheDir, key))
    .filter((dir) => ["vmlinuz", "initrd.gz", "packages.json"].every((f) => NodeFs.existsSync(NodePath.join(dir, f))))
    .sort((a, b) => NodeFs.statSync(b).mtimeMs - NodeFs.statSync(a).mtimeMs)
  const dir = builds[0]
  if (dir === undefined) return undefined
  return {
    kernel: NodePath.join(dir, "vmlinuz"),
    initrd: NodePath.join(dir, "initrd.gz"),
    packages: JSON.parse(NodeFs.readFileSync(NodePath.join(dir, "packages.json"), "utf8")) as Record<string, string>
  }
}

/** How the guest boots: where its agent listens, and whether ttyS0 has a root shell or a getty (password `root`). */
export interface GuestOptions {
  readonly agent?: "isa-serial" | "virtio-serial" | undefined
  readonly login?: boolean | undefined
  readonly memory?: number | undefined
}

/** A machine config booting the guest, with its console on ttyS0 and the agent as asked. */
export const machineConfig = (guest: LinuxGuest, options: GuestOptions = {}, extra: MachineConfig = {}): MachineConfig => ({
  machineType: "pc",
  args: [
    "-nodefaults", "-nic", "none", "-m", String(options.memory ?? 256),
    "-kernel", guest.kernel, "-initrd", guest.initrd,
    "-append", [
      "console=ttyS0", "quiet",
      ...(options.agent === undefined ? [] : [`qga=${options.agent === "isa-serial" ? "isa" : "virtio"}`]),
      ...(options.login === true ? ["shell=login"] : [])
    ].join(" ")
  ],
  console: {},
  ...(options.agent === undefined ? {} : { guestAgent: { device: options.agent } }),
  ...extra
})

/** `$XDG_CACHE_HOME/qemu-machine/linux-guest`, or `~/.cache/...`. */
export const defaultCacheDir = (): string =>
  NodePath.join(process.env.XDG_CACHE_HOME ?? NodePath.join(NodeOs.homedir(), ".cache"), "qemu-machine", "linux-guest")

if (process.argv[1] !== undefined && NodePath.resolve(process.argv[1]) === NodePath.resolve(new URL(import.meta.url).pathname)) {
  console.log(JSON.stringify(build(), null, 2))
}
