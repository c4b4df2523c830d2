/**
 * How deeply a YAML text nests, found without recursion.
 *
 * The `yaml` package lexes and parses with loops over its own stacks, but
 * composes documents and converts them to JavaScript by recursion: a quarter
 * of a megabyte of `[[[[…]]]]` (or `- - - - …`) exhausts the stack there, and
 * near the stack's end V8 has been seen to abort the whole process (out of
 * memory while compiling a regular expression) instead of throwing. So the
 * depth is measured on the parsed tokens before composing, and on the
 * composed document, aliases followed, before converting.
 */
import { type CST, type Document, isAlias, isCollection, isPair, type Node } from "yaml"

const collections = new Set(["block-map", "block-seq", "flow-collection"])

/**
 * A collection of `tokens` (as `Parser` gives them) nested more than
 * `limit` collections deep, or undefined.
 */
export const deepestToken = (tokens: ReadonlyArray<CST.Token>, limit: number): CST.Token | undefined => {
  const stack: Array<{ readonly value: unknown; readonly depth: number }> = tokens.map((value) => ({ value, depth: 0 }))
  const seen = new Set<object>()
  while (stack.length > 0) {
    const { depth: outer, value } = stack.pop()!
    if (typeof value !== "object" || value === null || seen.has(value)) continue
    seen.add(value)
    const isCollectionToken = collections.has((value as { readonly type?: unknown }).type as string)
    const depth = isCollectionToken ? outer + 1 : outer
    if (depth > limit) return value as CST.Token
    for (const child of Array.isArray(value) ? value : Object.values(value)) stack.push({ value: child, depth })
  }
  return undefined
}

/**
 * A collection of `document` nested more than `limit` collections
 * deep, counting through aliases (an alias nests what it stands for where it
 * stands), or undefined. A collection reached again is walked again only
 * when reached deeper, so an alias of itself is too deep, and an alias
 * repeated a thousand times costs one walk.
 */
export const deepestNode = (document: Document.Parsed, limit: number): Node | undefined => {
  const stack: Array<{ readonly node: unknown; readonly depth: number }> = [{ node: document.contents, depth: 0 }]
  const deepest = new Map<Node, number>()
  while (stack.length > 0) {
    const { depth: outer, node } = stack.pop()!
    if (isAlias(node)) {
      stack.push({ node: node.resolve(document), depth: outer })
    } else if (isPair(node)) {
      stack.push({ node: node.key, depth: outer }, { node: node.value, depth: outer })
    } else if (isCollection(node)) {
      const depth = outer + 1
      if (depth > limit) return node
      if ((deepest.get(node) ?? 0) >= depth) continue
      deepest.set(node, depth)
      for (const item of node.items) stack.push({ node: item, depth })
    }
  }
  return undefined
}
