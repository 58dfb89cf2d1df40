/**
 * Secrets in QEMU's command line, hidden for messages and logs: the `data`
 * of a `secret` object (`-object secret,id=s0,data=...`, or its JSON form)
 * and values of password-like keys (`password=`, `passwd=`, `passphrase=`,
 * dotted or not), in `key=value` option lists and in JSON arguments.
 */

/** What a redacted value is shown as. */
export const REDACTED = "<redacted>"

const SECRET_KEYS = /^(password|passwd|passphrase|secret)$/i

const isSecretKey = (key: string, secretObject: boolean) => {
  const last = key.slice(key.lastIndexOf(".") + 1)
  return SECRET_KEYS.test(last) || (secretObject && last === "data")
}

/** Splits an option list on single commas (QEMU writes a literal comma as two). */
const splitOptions = (value: string): Array<string> => {
  const parts: Array<string> = []
  let current = ""
  for (let i = 0; i < value.length; i++) {
    const c = value[i]
    if (c === ",") {
      if (value[i + 1] === ",") {
        current += ",,"
        i++
        continue
      }
      parts.push(current)
      current = ""
    } else {
      current += c
    }
  }
  parts.push(current)
  return parts
}

const redactJson = (value: unknown, secretObject: boolean): unknown => {
  if (Array.isArray(value)) return value.map((item) => redactJson(item, secretObject))
  if (value === null || typeof value !== "object") return value
  const record = value as Record<string, unknown>
  const isSecret = secretObject || record["qom-type"] === "secret"
  const out: Record<string, unknown> = {}
  for (const [key, item] of Object.entries(record)) {
    out[key] = isSecretKey(key, isSecret) ? REDACTED : redactJson(item, isSecret)
  }
  return out
}

/** One argument, redacted: a JSON object, or a `key=value,...` option list. */
export const redactArg = (arg: string): string => {
  if (arg.startsWith("{")) {
    try {
      return JSON.stringify(redactJson(JSON.parse(arg), false))
    } catch {
      // Not JSON after all: treat it as an option list.
    }
  }
  if (!arg.includes("=")) return arg
  const parts = splitOptions(arg)
  const secretObject = parts[0] === "secret" || parts.includes("qom-type=secret")
  let changed = false
  const redacted = parts.map((part) => {
    const eq = part.indexOf("=")
    if (eq <= 0 || !isSecretKey(part.slice(0, eq), secretObject)) return part
    changed = true
    return `${part.slice(0, eq)}=${REDACTED}`
  })
  return changed ? redacted.join(",") : arg
}

/** A command line with its secrets replaced by `<redacted>`, for messages and logs. */
export const redactArgv = (argv: ReadonlyArray<string>): Array<string> => argv.map(redactArg)

/** The redacted command line as one string. */
export const formatCommand = (argv: ReadonlyArray<string>): string => redactArgv(argv).join(" ")
