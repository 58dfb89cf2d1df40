/**
 * QAPI introspection (`query-qmp-schema`): the wire schema, and a structural
 * signature per command and event that does not depend on QEMU's masked type
 * names (`"123"`), so two builds can be compared. Shared by the code
 * generator (`scripts/gen-qapi.ts`) and the drift check at connect.
 */
import * as Schema from "effect/Schema"
import { createHash } from "node:crypto"

const Features = Schema.optional(Schema.Array(Schema.String))

/** A member of an object type; `default` present (always `null`) means optional. */
export const ObjectMember = Schema.Struct({
  name: Schema.String,
  type: Schema.String,
  default: Schema.optional(Schema.Null),
  features: Features
})

/** One entry of `query-qmp-schema`. Unknown fields are kept. */
export const SchemaInfo = Schema.Union(
  Schema.Struct({
    "meta-type": Schema.Literal("command"),
    name: Schema.String,
    "arg-type": Schema.String,
    "ret-type": Schema.String,
    "allow-oob": Schema.optional(Schema.Boolean),
    features: Features
  }),
  Schema.Struct({ "meta-type": Schema.Literal("event"), name: Schema.String, "arg-type": Schema.String, features: Features }),
  Schema.Struct({
    "meta-type": Schema.Literal("object"),
    name: Schema.String,
    members: Schema.Array(ObjectMember),
    tag: Schema.optional(Schema.String),
    variants: Schema.optional(Schema.Array(Schema.Struct({ case: Schema.String, type: Schema.String }))),
    features: Features
  }),
  Schema.Struct({
    "meta-type": Schema.Literal("enum"),
    name: Schema.String,
    values: Schema.Array(Schema.String),
    features: Features
  }),
  Schema.Struct({ "meta-type": Schema.Literal("array"), name: Schema.String, "element-type": Schema.String }),
  Schema.Struct({
    "meta-type": Schema.Literal("alternate"),
    name: Schema.String,
    members: Schema.Array(Schema.Struct({ type: Schema.String })),
    features: Features
  }),
  Schema.Struct({
    "meta-type": Schema.Literal("builtin"),
    name: Schema.String,
    "json-type": Schema.Literal("string", "number", "int", "boolean", "null", "object", "array", "value")
  })
)
export type SchemaInfo = typeof SchemaInfo.Type

/** The whole reply of `query-qmp-schema`. */
export const QmpSchema = Schema.Array(SchemaInfo)
export type QmpSchema = typeof QmpSchema.Type

/** Lookup by (masked) name. */
export type SchemaIndex = ReadonlyMap<string, SchemaInfo>

export const index = (schema: QmpSchema): SchemaIndex => new Map(schema.map((info) => [info.name, info]))

/** A comparator ordering by a string key (code-unit order, as `sort()` does: no locale). */
export const byKey = <A>(key: (a: A) => string) => (a: A, b: A): number =>
  key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0

const sha256 = (text: string): string => createHash("sha256").update(text).digest("hex")

/**
 * The hash of the schema exactly as QEMU sent it (parsed, not decoded, so key
 * order and unknown fields count): equal only for the same build.
 */
export const rawHash = (schema: unknown): string => sha256(JSON.stringify(schema))

/**
 * A canonical text for the types reachable from `roots`: a depth-first walk
 * that numbers named types in the order it meets them, with object members,
 * enum values and union cases sorted, so the masked names and declaration
 * order drop out. Features and `allow-oob` are not part of the shape.
 */
const canonical = (byName: SchemaIndex, roots: ReadonlyArray<string>): string => {
  const ids = new Map<string, number>()
  const definitions: Array<unknown> = []
  const ref = (name: string): unknown => {
    const info = byName.get(name)
    if (info === undefined) return `?${name}`
    switch (info["meta-type"]) {
      case "builtin":
        return info["json-type"]
      case "array":
        return ["array", ref(info["element-type"])]
      case "command":
      case "event":
        return `?${name}`
      default: {
        const known = ids.get(name)
        if (known !== undefined) return `#${known}`
        const id = definitions.length
        ids.set(name, id)
        definitions.push(null)
        definitions[id] = describe(info)
        return `#${id}`
      }
    }
  }
  const jsonKind = (name: string): string => {
    const info = byName.get(name)
    if (info === undefined) return `?${name}`
    switch (info["meta-type"]) {
      case "builtin":
        return info["json-type"] === "int" ? "number" : info["json-type"]
      case "enum":
        return "string"
      default:
        return info["meta-type"]
    }
  }
  const describe = (info: SchemaInfo): unknown => {
    switch (info["meta-type"]) {
      case "enum":
        return ["enum", [...info.values].sort()]
      case "alternate":
        // QAPI gives each member of an alternate a different JSON type: order by it.
        return ["alternate", [...info.members].sort(byKey((m) => jsonKind(m.type))).map((m) => ref(m.type))]
      case "object":
        return [
          "object",
          [...info.members].sort(byKey((m) => m.name)).map((m) => [m.name, "default" in m, ref(m.type)]),
          info.tag ?? null,
          [...(info.variants ?? [])].sort(byKey((v) => v.case)).map((v) => [v.case, ref(v.type)])
        ]
      default:
        return null
    }
  }
  const shape = roots.map(ref)
  return JSON.stringify([shape, definitions])
}

/** Structural signatures (16 hex digits) of every command and event. */
export interface Signatures {
  readonly commands: Readonly<Record<string, string>>
  readonly events: Readonly<Record<string, string>>
}

export const signatures = (schema: QmpSchema): Signatures => {
  const byName = index(schema)
  const commands: Record<string, string> = {}
  const events: Record<string, string> = {}
  for (const info of [...schema].sort(byKey((i) => i.name))) {
    if (info["meta-type"] === "command") {
      commands[info.name] = sha256(canonical(byName, [info["arg-type"], info["ret-type"]])).slice(0, 16)
    } else if (info["meta-type"] === "event") {
      events[info.name] = sha256(canonical(byName, [info["arg-type"]])).slice(0, 16)
    }
  }
  return { commands, events }
}

/** One hash over all signatures: equal when every command and event has the same shape. */
export const structuralHash = (sigs: Signatures): string =>
  sha256(JSON.stringify([Object.entries(sigs.commands).sort(), Object.entries(sigs.events).sort()]))

/** Names added, removed and changed (`Qapi.SignatureDiff`). */
export const diff = (
  expected: Readonly<Record<string, string>>,
  actual: Readonly<Record<string, string>>
) => ({
  added: Object.keys(actual).filter((name) => !(name in expected)).sort(),
  removed: Object.keys(expected).filter((name) => !(name in actual)).sort(),
  changed: Object.keys(actual).filter((name) => name in expected && expected[name] !== actual[name]).sort()
})
