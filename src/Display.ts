/**
 * The guest's screen and keyboard: a PNG of the display, and keys typed in
 * order.
 *
 * ```ts
 * const vm = yield* Machine.launch({ vga: "std", ... })   // a display device: -vga std (with -display none)
 * const png = yield* vm.screenshot()                      // PNG bytes
 * yield* vm.sendKeys("root\n")                            // US layout, shift where needed
 * yield* vm.sendKey("ctrl-alt-delete")                    // one chord
 * ```
 *
 * Keys go through QMP `send-key`, one chord per command, awaited in turn:
 * QEMU queues `send-key` events and plays them with their hold time, so
 * they reach the guest in the order sent. (`input-send-event` skips that
 * queue: mixing the two can reorder keys.) QEMU's queue holds about a
 * hundred chords and drops what does not fit, without a word: `sendKeys`
 * sends 32 at a time and waits until QEMU has played them.
 *
 * @module
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as NodeCrypto from "node:crypto"
import { SendKeyArgumentsKeysItemQcodeData } from "./generated/qapi.js"
import * as Tracing from "./internal/tracing.js"
import type { QMPDecodeError } from "./Errors.js"
import type * as QmpClient from "./QmpClient.js"

/** A QEMU key code (`QKeyCode` in QEMU's schema), e.g. `a`, `shift`, `ret`, `f1`. */
export type QKeyCode = SendKeyArgumentsKeysItemQcodeData

/** The machine has no display to take a screenshot of, or the file could not be read back. */
export class ScreenshotUnavailable extends Schema.TaggedError<ScreenshotUnavailable>()("ScreenshotUnavailable", {
  detail: Schema.String,
  cause: Schema.optional(Schema.Unknown)
}) {
  override get message(): string {
    return `no screenshot: ${this.detail}`
  }
}

/** Text or a key name that cannot be typed: nothing was sent. */
export class KeyUnmappable extends Schema.TaggedError<KeyUnmappable>()("KeyUnmappable", {
  input: Schema.String,
  /** The first character or key name that has no key code. */
  key: Schema.String
}) {
  override get message(): string {
    return `cannot type ${JSON.stringify(this.key)} (in ${JSON.stringify(this.input.slice(0, 80))}): no QEMU key code for it on a US layout`
  }
}

/**
 * The guest is not running (paused, or started with `-S` and not yet
 * continued): QEMU drops keyboard input then, without an error, so no key
 * was sent. `cont` first. (A guest suspended to RAM takes keys: they wake it.)
 */
export class KeyboardUnavailable extends Schema.TaggedError<KeyboardUnavailable>()("KeyboardUnavailable", {
  /** QEMU's run state, e.g. `paused`, `prelaunch`, `inmigrate`. */
  status: Schema.String
}) {
  override get message(): string {
    return `the guest is not running (status ${this.status}): QEMU would drop the keys; continue it first (cont)`
  }
}

const NO_DISPLAY = /no console/i // "There is no console to take a screendump from"

/** Options of `screenshot`. */
export interface ScreenshotOptions {
  /** Where QEMU writes the file before it is read back and removed: a directory QEMU can write to. */
  readonly directory: string
  /** The display device's id, for a machine with several. */
  readonly device?: string | undefined
  /** The head of a multi-head device. */
  readonly head?: number | undefined
}

/**
 * A PNG of the display (`screendump` with `format: "png"`). Without a
 * display device (`-vga none`, the default here) it fails with
 * `ScreenshotUnavailable` saying what to configure.
 */
export const screenshot = (
  qmp: QmpClient.QmpClientService,
  options: ScreenshotOptions
): Effect.Effect<Uint8Array, QmpClient.CommandError | QMPDecodeError | ScreenshotUnavailable, FileSystem.FileSystem | Path.Path> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const file = path.join(options.directory, `screenshot-${NodeCrypto.randomBytes(6).toString("hex")}.png`)
    yield* qmp.execute("screendump", {
      filename: file,
      format: "png",
      ...(options.device === undefined ? {} : { device: options.device }),
      ...(options.head === undefined ? {} : { head: options.head })
    }).pipe(
      Effect.catchTag("QMPCommandError", (error): Effect.Effect<never, QmpClient.CommandError | ScreenshotUnavailable> =>
        NO_DISPLAY.test(error.desc)
          ? Effect.fail(
            new ScreenshotUnavailable({
              detail: `${error.desc}: give the machine a display device, e.g. vga: "std" (QEMU runs with -display none)`,
              cause: error
            })
          )
          : Effect.fail(error))
    )
    return yield* fs.readFile(file).pipe(
      Effect.ensuring(Effect.ignore(fs.remove(file))),
      Effect.mapError((cause) => new ScreenshotUnavailable({ detail: `QEMU wrote ${file}, but it cannot be read: ${cause.message}`, cause }))
    )
  }).pipe(Tracing.withSpan("Display.screenshot"))

const SHIFTED: Readonly<Record<string, string>> = {
  "!": "1", "@": "2", "#": "3", "$": "4", "%": "5", "^": "6", "&": "7", "*": "8", "(": "9", ")": "0",
  "_": "minus", "+": "equal", "{": "bracket_left", "}": "bracket_right", "|": "backslash",
  ":": "semicolon", "\"": "apostrophe", "~": "grave_accent", "<": "comma", ">": "dot", "?": "slash"
}
const PLAIN: Readonly<Record<string, string>> = {
  " ": "spc", "\n": "ret", "\r": "ret", "\t": "tab", "\b": "backspace", "\x1b": "esc",
  "-": "minus", "=": "equal", "[": "bracket_left", "]": "bracket_right", "\\": "backslash",
  ";": "semicolon", "'": "apostrophe", "`": "grave_accent", ",": "comma", ".": "dot", "/": "slash"
}
/** Names people write for keys, to QEMU's. */
const ALIASES: Readonly<Record<string, string>> = {
  control: "ctrl", del: "delete", enter: "ret", return: "ret", escape: "esc", space: "spc", win: "meta_l",
  super: "meta_l", pgup: "pgup", pageup: "pgup", pagedown: "pgdn", pgdn: "pgdn", ins: "insert"
}

const isKeyCode = Schema.is(SendKeyArgumentsKeysItemQcodeData)

/** QEMU's default hold time of `send-key`, in milliseconds. */
const DEFAULT_HOLD_TIME = 100
/**
 * Chords sent before waiting for QEMU to play them: well under its
 * 1024-entry input queue (a key is its press, its release, a sync after
 * each and a hold time after each: six entries; a shifted character twelve).
 */
const BATCH = 32

/**
 * How long QEMU takes to play `chords`, in milliseconds: `send-key` holds
 * after each press and after each release, so a chord of k keys takes 2k
 * hold times (measured: 200 plain characters at 20 ms played in 8.0 s).
 * One hold time more a batch absorbs QEMU's timers firing late.
 */
const playTime = (chords: ReadonlyArray<ReadonlyArray<QKeyCode>>, holdTime: number): number =>
  holdTime * (1 + chords.reduce((sum, chord) => sum + 2 * chord.length, 0))

/** The chord that types one character (US layout), or undefined. */
export const chordOf = (char: string): ReadonlyArray<QKeyCode> | undefined => {
  if (/^[a-z0-9]$/.test(char)) return [char as QKeyCode]
  if (/^[A-Z]$/.test(char)) return ["shift", char.toLowerCase() as QKeyCode]
  const plain = PLAIN[char]
  if (plain !== undefined) return [plain as QKeyCode]
  const shifted = SHIFTED[char]
  return shifted === undefined ? undefined : ["shift", shifted as QKeyCode]
}

/** The key codes of a combination such as `ctrl-alt-delete`, `shift-f10` or `ret`. */
export const parseCombination = (combination: string): Effect.Effect<ReadonlyArray<QKeyCode>, KeyUnmappable> =>
  Effect.forEach(combination.split(/-(?=.)/), (part) => {
    const lower = part.toLowerCase()
    const name = ALIASES[lower] ?? lower
    if (isKeyCode(name)) return Effect.succeed(name)
    const chord = part.length === 1 ? chordOf(part) : undefined
    return chord?.length === 1 ? Effect.succeed(chord[0]!) : Effect.fail(new KeyUnmappable({ input: combination, key: part }))
  })

/**
 * Fails with `KeyboardUnavailable` unless the guest runs (or is suspended to
 * RAM): QEMU drops input while it is stopped. Checked before each batch; a
 * pause that comes between the check and the batch still loses its keys.
 */
const whileRunning = (qmp: QmpClient.QmpClientService) =>
  Effect.flatMap(qmp.execute("query-status"), (info) =>
    info.running || info.status === "suspended" ? Effect.void : Effect.fail(new KeyboardUnavailable({ status: info.status })))

const sendChord = (qmp: QmpClient.QmpClientService, keys: ReadonlyArray<QKeyCode>, holdTime: number) =>
  qmp.execute("send-key", { keys: keys.map((data) => ({ type: "qcode" as const, data })), "hold-time": holdTime })

/** One batch: checks that the guest runs, sends the chords in order, and waits while QEMU plays them. */
const playBatch = (qmp: QmpClient.QmpClientService, chords: ReadonlyArray<ReadonlyArray<QKeyCode>>, holdTime: number) =>
  whileRunning(qmp).pipe(
    Effect.zipRight(Effect.forEach(chords, (chord) => sendChord(qmp, chord, holdTime), { discard: true })),
    Effect.zipRight(Effect.sleep(Duration.millis(playTime(chords, holdTime))))
  )

/** Options of `sendKeys` and `sendKey`. */
export interface KeyOptions {
  /** How long each chord is held, in milliseconds. Default 100 (QEMU's). */
  readonly holdTime?: number | undefined
}

/**
 * Presses one combination, e.g. `ctrl-alt-delete`, `alt-f2`, `ret`, and
 * returns once QEMU has played it (two hold times a key), so that calls in
 * a loop never overrun QEMU's input queue.
 */
export const sendKey = (
  qmp: QmpClient.QmpClientService,
  combination: string,
  options: KeyOptions = {}
): Effect.Effect<void, QmpClient.CommandError | QMPDecodeError | KeyUnmappable | KeyboardUnavailable> =>
  Effect.flatMap(parseCombination(combination), (keys) => playBatch(qmp, [keys], options.holdTime ?? DEFAULT_HOLD_TIME)).pipe(
    Tracing.withSpan("Display.sendKey", { attributes: { "keys.combination": combination } })
  )

/**
 * Types `text` on a US layout, shift included (`\n` is Enter, `\t` Tab),
 * and returns once QEMU has played the keys (two hold times a key: a
 * plain character two, a shifted one four).
 * Every character is checked first: one that cannot be typed fails with
 * `KeyUnmappable` and nothing is sent. A guest that is not running fails
 * with `KeyboardUnavailable` (QEMU would drop the keys), checked before each
 * batch of 32.
 */
export const sendKeys = (
  qmp: QmpClient.QmpClientService,
  text: string,
  options: KeyOptions = {}
): Effect.Effect<void, QmpClient.CommandError | QMPDecodeError | KeyUnmappable | KeyboardUnavailable> =>
  Effect.suspend((): Effect.Effect<void, QmpClient.CommandError | QMPDecodeError | KeyUnmappable | KeyboardUnavailable> => {
    const chords: Array<ReadonlyArray<QKeyCode>> = []
    for (const char of text) {
      const chord = chordOf(char)
      if (chord === undefined) return Effect.fail(new KeyUnmappable({ input: text, key: char }))
      chords.push(chord)
    }
    // QEMU keeps at most 1024 queued input entries and drops the rest silently: send a batch, then wait
    // while QEMU plays it before the next, so that no more than one batch is ever queued.
    const holdTime = options.holdTime ?? DEFAULT_HOLD_TIME
    const batches = Array.from({ length: Math.ceil(chords.length / BATCH) }, (_, i) => chords.slice(i * BATCH, (i + 1) * BATCH))
    return Effect.forEach(batches, (batch) => playBatch(qmp, batch, holdTime), { discard: true })
  }).pipe(Tracing.withSpan("Display.sendKeys", { attributes: { "keys.length": text.length } }))
