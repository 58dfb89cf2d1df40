/**
 * The examples shown in `docs/*.md` are the files in `examples/`: a block
 * `<!-- example: examples/x.ts -->` followed by a ```ts fence holds the
 * file verbatim. This rewrites the fences from the files.
 *
 *   npm run docs:examples             rewrite the blocks
 *   npm run docs:examples -- --check  exit 1 if a block differs from its file
 */
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"

const root = NodePath.resolve(import.meta.dirname, "..")
const BLOCK = /<!-- example: (\S+) -->(?:\n\n```ts\n[\s\S]*?\n```)?/g

/** A doc's text with every example block made its file's content. */
export const synced = (text: string): string =>
  text.replace(BLOCK, (_, file: string) =>
    `<!-- example: ${file} -->\n\n\`\`\`ts\n${NodeFs.readFileSync(NodePath.join(root, file), "utf8").trimEnd()}\n\`\`\``)

/** The docs with example blocks: path → current text. */
export const docs = (): ReadonlyArray<{ readonly path: string; readonly text: string }> =>
  NodeFs.readdirSync(NodePath.join(root, "docs")).filter((f) => f.endsWith(".md")).map((f) => {
    const path = NodePath.join(root, "docs", f)
    return { path, text: NodeFs.readFileSync(path, "utf8") }
  })

if (process.argv[1] !== undefined && NodePath.resolve(process.argv[1]) === NodePath.resolve(import.meta.filename)) {
  const stale = docs().filter((d) => synced(d.text) !== d.text)
  if (process.argv.includes("--check")) {
    for (const d of stale) console.error(`${NodePath.relative(root, d.path)}: an example differs from its file (npm run docs:examples)`)
    process.exitCode = stale.length === 0 ? 0 : 1
  } else {
    for (const d of stale) NodeFs.writeFileSync(d.path, synced(d.text))
    console.log(`${stale.length} doc(s) rewritten`)
  }
}
