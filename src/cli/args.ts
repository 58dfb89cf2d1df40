/**
 * The command line's own small parser: subcommands with `--flag`,
 * `--option VALUE` (or `--option=VALUE`) and the QEMU arguments after `--`.
 * Errors are one line; help is plain text (no colours, whatever the output).
 */

/** One option of a subcommand. */
export interface OptionSpec {
  readonly name: string
  /** A flag takes no value. */
  readonly kind: "flag" | "value"
  /** The value's placeholder in help, e.g. `FILE`. */
  readonly value?: string
  readonly description: string
  /** What the option is when not given (for values). */
  readonly default?: string
}

/** A subcommand. */
export interface CommandSpec {
  readonly name: string
  readonly summary: string
  /** What follows the options in the usage line, e.g. `-- <qemu args>`. */
  readonly rest?: string
  readonly options: ReadonlyArray<OptionSpec>
}

/** What was parsed. */
export interface Parsed {
  readonly flags: ReadonlySet<string>
  readonly values: ReadonlyMap<string, string>
  /** The words after `--`. */
  readonly passthrough: ReadonlyArray<string>
}

/** A mistake on the command line: said in one line, with where to look. */
export class UsageError {
  readonly _tag = "UsageError"
  constructor(readonly message: string) {}
}

/** Parses a subcommand's words (after its name). */
export const parse = (spec: CommandSpec, words: ReadonlyArray<string>): Parsed | UsageError => {
  const flags = new Set<string>()
  const values = new Map<string, string>()
  const dash = words.indexOf("--")
  const own = dash < 0 ? words : words.slice(0, dash)
  for (let i = 0; i < own.length; i++) {
    const word = own[i]!
    if (!word.startsWith("--")) {
      return new UsageError(`${spec.name}: unexpected "${word}" (QEMU's own arguments go after --)`)
    }
    const eq = word.indexOf("=")
    const name = word.slice(2, eq < 0 ? undefined : eq)
    const option = spec.options.find((o) => o.name === name)
    if (option === undefined) return new UsageError(`${spec.name}: unknown option --${name}`)
    if (option.kind === "flag") {
      if (eq >= 0) return new UsageError(`${spec.name}: --${name} takes no value`)
      flags.add(name)
    } else {
      const value = eq >= 0 ? word.slice(eq + 1) : own[++i]
      if (value === undefined || value === "") return new UsageError(`${spec.name}: --${name} needs a value (${option.value ?? "VALUE"})`)
      values.set(name, value)
    }
  }
  for (const option of spec.options) {
    if (option.default !== undefined && !values.has(option.name)) values.set(option.name, option.default)
  }
  return { flags, values, passthrough: dash < 0 ? [] : words.slice(dash + 1) }
}

/** `qemu-machine NAME [options] REST`, then each option on a line. */
export const help = (spec: CommandSpec): string => {
  const width = Math.max(...spec.options.map((o) => o.name.length + (o.value?.length ?? 0) + 3), 10)
  const lines = spec.options.map((o) => {
    const left = `--${o.name}${o.kind === "value" ? ` ${o.value ?? "VALUE"}` : ""}`
    return `  ${left.padEnd(width)}  ${o.description}${o.default !== undefined ? ` (default ${o.default})` : ""}`
  })
  return [
    `Usage: qemu-machine ${spec.name} [options]${spec.rest !== undefined ? ` ${spec.rest}` : ""}`,
    "",
    spec.summary,
    "",
    "Options:",
    ...lines,
    `  ${"--help".padEnd(width)}  this text`
  ].join("\n")
}

/** The top-level help: the subcommands, one line each. */
export const overview = (commands: ReadonlyArray<CommandSpec>, version: string): string =>
  [
    `qemu-machine ${version}: launch QEMU machines and drive them over QMP`,
    "",
    "Usage: qemu-machine <command> [options]",
    "",
    "Commands:",
    ...commands.map((c) => `  ${c.name.padEnd(8)}  ${c.summary}`),
    "",
    "Run `qemu-machine <command> --help` for a command's options."
  ].join("\n")
