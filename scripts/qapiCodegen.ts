/**
 * Turns a saved `query-qmp-schema` (the fixture `qapi/qmp-schema.json`) into
 * `src/generated/qapi.ts`: a TypeScript type and an `effect/Schema` for every
 * object, enum and alternate type, and the typed maps of commands and events.
 *
 * Pure and deterministic: the same fixture gives the same bytes (checked by
 * `npm run gen:qapi -- --check` and a unit test).
 *
 * QEMU masks type names in introspection (`"123"`), so names are made up from
 * where a type is first met, walking commands then events in name order:
 * `query-status` returns `QueryStatusResult`, whose `status` member is
 * `QueryStatusResultStatus`, and so on. The empty object is `Empty`.
 */
import * as Schema from "effect/Schema"
import * as Introspection from "../src/internal/qapiIntrospection.js"

/** The fixture: where the schema came from, and the schema. */
export const Fixture = Schema.Struct({
  source: Schema.Struct({
    binary: Schema.String,
    version: Schema.String,
    package: Schema.String,
    machine: Schema.String
  }),
  schema: Introspection.QmpSchema
})
export type Fixture = typeof Fixture.Type

/** The fixture as saved: one schema entry per line (as QEMU sent it), so a QEMU upgrade reads as a diff. */
export const formatFixture = (fixture: { readonly source: Fixture["source"]; readonly schema: ReadonlyArray<unknown> }): string =>
  `{\n  "source": ${JSON.stringify(fixture.source)},\n  "schema": [\n${
    fixture.schema.map((info) => `    ${JSON.stringify(info)}`).join(",\n")
  }\n  ]\n}\n`

type Info = Introspection.SchemaInfo
type ObjectInfo = Extract<Info, { readonly "meta-type": "object" }>

const words = (text: string) => text.split(/[^A-Za-z0-9]+/).filter((word) => word.length > 0)

/** `query-status` → `QueryStatus`, `BLOCK_JOB_COMPLETED` → `BlockJobCompleted`. */
export const pascal = (text: string): string => {
  const name = words(text)
    .map((word) => word[0]!.toUpperCase() + (word === word.toUpperCase() ? word.slice(1).toLowerCase() : word.slice(1)))
    .join("")
  return /^[0-9]/.test(name) ? `_${name}` : name
}

const quote = (text: string) => JSON.stringify(text)

/** Generates the module from the fixture as parsed from JSON (its raw schema is what `rawHash` covers). */
export const generate = (parsed: unknown): string => {
  const { schema, source } = Schema.decodeUnknownSync(Fixture)(parsed)
  const rawSchema = (parsed as { readonly schema: unknown }).schema
  const byName = Introspection.index(schema)
  const info = (name: string): Info => {
    const found = byName.get(name)
    if (found === undefined) throw new Error(`the schema refers to an unknown type ${name}`)
    return found
  }
  const nameOrder = Introspection.byKey((i: { readonly name: string }) => i.name)
  const commands = schema.filter((i): i is Extract<Info, { "meta-type": "command" }> => i["meta-type"] === "command")
    .sort(nameOrder)
  const events = schema.filter((i): i is Extract<Info, { "meta-type": "event" }> => i["meta-type"] === "event")
    .sort(nameOrder)

  // --- Names: breadth first from commands, then events. -------------------------------------
  const names = new Map<string, string>()
  const taken = new Set<string>(["Schema", "Commands", "Events"])
  const order: Array<string> = []
  const queue: Array<string> = []
  const isEmptyObject = (i: Info) => i["meta-type"] === "object" && i.members.length === 0 && i.variants === undefined
  const visit = (typeName: string, suggestion: string): void => {
    const i = info(typeName)
    if (i["meta-type"] === "builtin") return
    if (i["meta-type"] === "array") return visit(i["element-type"], `${suggestion.replace(/Result$/, "")}Item`)
    if (names.has(typeName)) return
    let name = isEmptyObject(i) ? "Empty" : suggestion
    for (let n = 2; taken.has(name); n++) name = `${isEmptyObject(i) ? "Empty" : suggestion}${n}`
    taken.add(name)
    names.set(typeName, name)
    order.push(typeName)
    queue.push(typeName)
  }
  for (const command of commands) {
    visit(command["arg-type"], `${pascal(command.name)}Arguments`)
    visit(command["ret-type"], `${pascal(command.name)}Result`)
  }
  for (const event of events) visit(event["arg-type"], `${pascal(event.name)}Data`)
  while (queue.length > 0) {
    const typeName = queue.shift()!
    const i = info(typeName)
    const name = names.get(typeName)!
    if (i["meta-type"] === "object") {
      for (const member of i.members) visit(member.type, `${name}${pascal(member.name)}`)
      for (const variant of i.variants ?? []) visit(variant.type, `${name}${pascal(variant.case)}`)
    } else if (i["meta-type"] === "alternate") {
      i.members.forEach((member, n) => visit(member.type, `${name}Option${n + 1}`))
    }
  }

  // --- Type and schema expressions. --------------------------------------------------------
  const builtinType = (jsonType: string) =>
    ({ string: "string", number: "number", int: "number", boolean: "boolean", null: "null" })[jsonType] ??
      (jsonType === "object" ? "{ readonly [key: string]: unknown }" : "unknown")
  const builtinSchema = (jsonType: string) =>
    ({
      string: "Schema.String",
      number: "Schema.Number",
      int: "Schema.Number",
      boolean: "Schema.Boolean",
      null: "Schema.Null",
      object: "Schema.Record({ key: Schema.String, value: Schema.Unknown })"
    })[jsonType] ?? "Schema.Unknown"
  const typeExpr = (typeName: string): string => {
    const i = info(typeName)
    if (i["meta-type"] === "builtin") return builtinType(i["json-type"])
    if (i["meta-type"] === "array") return `ReadonlyArray<${typeExpr(i["element-type"])}>`
    return names.get(typeName)!
  }
  const schemaExpr = (typeName: string): string => {
    const i = info(typeName)
    if (i["meta-type"] === "builtin") return builtinSchema(i["json-type"])
    if (i["meta-type"] === "array") return `Schema.Array(${schemaExpr(i["element-type"])})`
    return names.get(typeName)!
  }

  type Member = ObjectInfo["members"][number]
  const memberType = (m: Member, override?: string) =>
    `readonly ${quote(m.name)}${"default" in m ? "?" : ""}: ${override ?? typeExpr(m.type)}`
  const memberSchema = (m: Member, override?: string) => {
    const value = override ?? schemaExpr(m.type)
    return `${quote(m.name)}: ${"default" in m ? `Schema.optionalWith(${value}, { exact: true })` : value}`
  }
  const literals = (values: ReadonlyArray<string>) => values.map(quote)

  /** Each branch of a union object: its tag values and the variant's members. */
  const branches = (i: ObjectInfo) => {
    const tagMember = i.members.find((m) => m.name === i.tag)
    const tagType = tagMember === undefined ? undefined : info(tagMember.type)
    if (tagType?.["meta-type"] !== "enum") throw new Error(`${i.name}: union tag ${i.tag} is not an enum`)
    const result: Array<{ readonly cases: ReadonlyArray<string>; readonly members: ReadonlyArray<Member> }> = []
    for (const value of tagType.values) {
      const variant = i.variants!.find((v) => v.case === value)
      if (variant === undefined) continue
      const variantInfo = info(variant.type)
      if (variantInfo["meta-type"] !== "object" || variantInfo.variants !== undefined) {
        throw new Error(`${i.name}: variant ${value} is not a plain object (nested unions are not supported)`)
      }
      result.push({ cases: [value], members: variantInfo.members })
    }
    const rest = tagType.values.filter((value) => i.variants!.every((v) => v.case !== value))
    if (rest.length > 0) result.push({ cases: rest, members: [] })
    return { tagMember: tagMember!, result }
  }

  const lines: Array<string> = []
  const out = (line = "") => lines.push(line)
  /** Lines of a list: a comma after each but the last. */
  const outList = (items: ReadonlyArray<string>) =>
    items.forEach((item, n) => out(`${item}${n < items.length - 1 ? "," : ""}`))
  out("/**")
  out(` * The QMP commands and events of QEMU ${source.version} (${source.binary}, ${source.package}),`)
  out(" * generated by `npm run gen:qapi` from `qapi/qmp-schema.json`. Do not edit: regenerate.")
  out(" *")
  out(" * For each command, `Commands` has its arguments and result types and `commands` their")
  out(" * Schemas; for each event, `Events` has its data type and `events` its Schema. Type names")
  out(" * are made up from where a type is first used (QEMU masks them in introspection).")
  out(" *")
  out(" * @module")
  out(" */")
  out("import * as Schema from \"effect/Schema\"")
  out()
  out("/** Every Schema is built on first use: loading this module builds none of them. */")
  out("const lazy = <A>(schema: () => Schema.Schema<A>): Schema.Schema<A> => Schema.suspend(schema)")
  out()
  out(`/** The QEMU the schema came from. */`)
  out(`export const source = ${JSON.stringify(source)} as const`)
  const sigs = Introspection.signatures(schema)
  out()
  out("/** sha256 of the schema as QEMU sent it: equal for the same build. */")
  out(`export const rawHash = ${quote(Introspection.rawHash(rawSchema))}`)
  out()
  out("/** sha256 over every command's and event's structural signature: equal when all shapes are. */")
  out(`export const structuralHash = ${quote(Introspection.structuralHash(sigs))}`)

  for (const typeName of order) {
    const i = info(typeName)
    const name = names.get(typeName)!
    out()
    switch (i["meta-type"]) {
      case "enum": {
        out(`export type ${name} = ${literals(i.values).join(" | ")}`)
        out(`export const ${name}: Schema.Schema<${name}> = lazy(() => Schema.Literal(${literals(i.values).join(", ")}))`)
        break
      }
      case "alternate": {
        out(`export type ${name} = ${i.members.map((m) => typeExpr(m.type)).join(" | ")}`)
        out(`export const ${name}: Schema.Schema<${name}> = lazy(() => Schema.Union(${
          i.members.map((m) => schemaExpr(m.type)).join(", ")
        }))`)
        break
      }
      case "object": {
        if (i.variants === undefined) {
          if (i.members.length === 0) {
            out(`export interface ${name} {}`)
            out(`export const ${name}: Schema.Schema<${name}> = lazy(() => Schema.Struct({}))`)
            break
          }
          out(`export interface ${name} {`)
          for (const m of i.members) out(`  ${memberType(m)}`)
          out("}")
          out(`export const ${name}: Schema.Schema<${name}> = lazy(() =>`)
          out(`  Schema.Struct({`)
          outList(i.members.map((m) => `    ${memberSchema(m)}`))
          out("  })")
          out(")")
          break
        }
        const { result, tagMember } = branches(i)
        const branchMembers = (b: (typeof result)[number]) =>
          [...i.members, ...b.members].map((m) => ({ m, tag: m === tagMember }))
        out(`export type ${name} =`)
        for (const b of result) {
          out(`  | {`)
          for (const { m, tag } of branchMembers(b)) {
            out(`    ${memberType(m, tag ? literals(b.cases).join(" | ") : undefined)}`)
          }
          out(`  }`)
        }
        out(`export const ${name}: Schema.Schema<${name}> = lazy(() =>`)
        out(`  Schema.Union(`)
        result.forEach((b, n) => {
          out(`    Schema.Struct({`)
          outList(branchMembers(b).map(({ m, tag }) =>
            `      ${memberSchema(m, tag ? `Schema.Literal(${literals(b.cases).join(", ")})` : undefined)}`
          ))
          out(`    })${n < result.length - 1 ? "," : ""}`)
        })
        out("  )")
        out(")")
        break
      }
      default:
        throw new Error(`unexpected ${i["meta-type"]} ${typeName}`)
    }
  }

  out()
  out("/** Every command: its arguments and its result. */")
  out("export interface Commands {")
  for (const c of commands) {
    out(`  readonly ${quote(c.name)}: { readonly args: ${typeExpr(c["arg-type"])}; readonly result: ${
      typeExpr(c["ret-type"])
    } }`)
  }
  out("}")
  out()
  out("/** The Schemas of every command's arguments and result. */")
  out("export const commands: {")
  out("  readonly [K in keyof Commands]: {")
  out("    readonly args: Schema.Schema<Commands[K][\"args\"]>")
  out("    readonly result: Schema.Schema<Commands[K][\"result\"]>")
  out("  }")
  out("} = {")
  outList(commands.map((c) =>
    `  ${quote(c.name)}: { args: ${schemaExpr(c["arg-type"])}, result: ${schemaExpr(c["ret-type"])} }`
  ))
  out("}")
  out()
  out("/** Every event: its data. */")
  out("export interface Events {")
  for (const e of events) out(`  readonly ${quote(e.name)}: ${typeExpr(e["arg-type"])}`)
  out("}")
  out()
  out("/** The Schema of every event's data. */")
  out("export const events: { readonly [K in keyof Events]: Schema.Schema<Events[K]> } = {")
  outList(events.map((e) => `  ${quote(e.name)}: ${schemaExpr(e["arg-type"])}`))
  out("}")
  out()
  out("/** The structural signature of every command and event, for the drift check. */")
  out("export const signatures: {")
  out("  readonly commands: Readonly<Record<string, string>>")
  out("  readonly events: Readonly<Record<string, string>>")
  out("} = {")
  out("  commands: {")
  outList(Object.entries(sigs.commands).map(([k, v]) => `    ${quote(k)}: ${quote(v)}`))
  out("  },")
  out("  events: {")
  outList(Object.entries(sigs.events).map(([k, v]) => `    ${quote(k)}: ${quote(v)}`))
  out("  }")
  out("}")
  return `${lines.join("\n")}\n`
}
