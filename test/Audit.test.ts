/**
 * The audit hash chain: canonical JSON is stable under key order, the hash is
 * pinned to its definition, a sealed trail verifies (also after a JSON round
 * trip), and any edit, insertion, removal or reordering is reported at the
 * record it changed, or where the chain breaks.
 */
import { createHash } from "node:crypto"
import { describe, expect, it } from "@effect/vitest"
import { Arbitrary, FastCheck as fc, Schema } from "effect"
import { canonicalJson, chainHash, GENESIS_HASH, sealRecord, verifyChain } from "../src/model/Audit.js"
import { type AuditCheckpoint, AuditRecord, type CallStackNode, type UnsealedAuditRecord } from "../src/schema/Audit.js"

const sha256 = (text: string) => createHash("sha256").update(text, "utf8").digest("hex")

const base: UnsealedAuditRecord = {
  agent_id: "agent-1",
  action: "tool.call:search",
  decision: "allow",
  reason: "matched tools.search",
  rule: "global/tools/search",
  lineage: ["agent-1", "root"],
  dry_run: false,
  at: 1_700_000_000_000
}

const stack: CallStackNode = {
  id: "n1",
  kind: "llm",
  label: "plan",
  latency_ms: 12.5,
  children: [{ id: "n2", kind: "tool", label: "search", latency_ms: 3, children: [] }]
}

/** Seals `records` into one chain, with offsets that are not simply 0, 1, 2. */
const chain = (records: ReadonlyArray<UnsealedAuditRecord>, from = GENESIS_HASH) => {
  let prev = from
  return records.map((record, i) => {
    const sealed = sealRecord(prev, record)
    prev = sealed.hash
    return { offset: 100 + 3 * i, record: sealed }
  })
}

const trail = chain([
  base,
  { ...base, decision: "deny", reason: "over budget", at: base.at + 1, call_stack: stack },
  { ...base, decision: "pending", dry_run: true, shadow_decision: "deny", trace_id: "t", span_id: "s", at: base.at + 2 },
  { ...base, decision: "dispatched", at: base.at + 3 }
])

// ---------------------------------------------------------------------------
// canonicalJson

describe("canonicalJson", () => {
  it("sorts keys at every depth, drops undefined fields, adds no whitespace", () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: true, y: null }], c: "x" }, u: undefined })).toBe(
      `{"a":{"c":"x","d":[3,{"y":null,"z":true}]},"b":1}`
    )
  })

  it("follows JSON.stringify for arrays, strings, numbers and toJSON", () => {
    expect(canonicalJson([undefined, -0, 1e21, 0.1, "é\n\"", new Date(0)])).toBe(
      `[null,0,1e+21,0.1,"é\\n\\"","1970-01-01T00:00:00.000Z"]`
    )
    expect(canonicalJson({ "b": 1, "a": 2, "B": 3, "é": 4, "10": 5, "9": 6 })).toBe(`{"10":5,"9":6,"B":3,"a":2,"b":1,"é":4}`)
  })

  it("throws on values JSON cannot hold faithfully", () => {
    expect(() => canonicalJson({ at: Number.NaN })).toThrow(TypeError)
    expect(() => canonicalJson([Number.POSITIVE_INFINITY])).toThrow(TypeError)
    expect(() => canonicalJson({ n: 1n })).toThrow(TypeError)
    expect(() => canonicalJson(undefined)).toThrow(TypeError)
    const cyclic: Record<string, unknown> = {}
    cyclic.self = cyclic
    expect(() => canonicalJson(cyclic)).toThrow(TypeError)
  })

  it("accepts a shared, acyclic value twice", () => {
    const shared = { x: 1 }
    expect(canonicalJson({ a: shared, b: [shared] })).toBe(`{"a":{"x":1},"b":[{"x":1}]}`)
  })

  /** Rebuilds objects with their keys in reverse order. */
  const reverseKeys = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(reverseKeys)
    if (value !== null && typeof value === "object") {
      return Object.fromEntries(
        Object.keys(value).reverse().map((k) => [k, reverseKeys((value as Record<string, unknown>)[k])])
      )
    }
    return value
  }

  it("is the same JSON value, independent of key order (property)", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const text = canonicalJson(value)
        expect(JSON.parse(text)).toEqual(JSON.parse(JSON.stringify(value)))
        expect(canonicalJson(reverseKeys(value))).toBe(text)
        expect(canonicalJson(JSON.parse(text))).toBe(text)
      }),
      { numRuns: 300 }
    )
  })
})

// ---------------------------------------------------------------------------
// chainHash and sealRecord

describe("chainHash", () => {
  it("is SHA-256 hex over the previous hash and the canonical record", () => {
    expect(GENESIS_HASH).toBe("0".repeat(64))
    const canonical =
      `{"action":"tool.call:search","agent_id":"agent-1","at":1700000000000,"decision":"allow","dry_run":false,` +
      `"lineage":["agent-1","root"],"reason":"matched tools.search","rule":"global/tools/search"}`
    expect(canonicalJson(base)).toBe(canonical)
    expect(chainHash(GENESIS_HASH, base)).toBe(sha256(GENESIS_HASH + canonical))
    // Pinned, so that a trail sealed by any earlier version still verifies.
    expect(chainHash(GENESIS_HASH, base)).toBe("d35b0ab5b166a854bcd3d0aac98d3821daf4638d7282c8677511546ab8b7ea9f")
  })

  it("hashes the UTF-8 bytes as node:crypto does, for any text and any size", () => {
    const unicode = { ...base, reason: "é ü 漢字 😀 \u2028 lone \ud800 surrogate" }
    expect(chainHash(GENESIS_HASH, unicode)).toBe(sha256(GENESIS_HASH + canonicalJson(unicode)))
    // Past the reused encoding buffer (16 KiB), in both character widths.
    for (const char of ["a", "é", "😀"]) {
      const large = { ...base, reason: char.repeat(20_000) }
      expect(chainHash(GENESIS_HASH, large)).toBe(sha256(GENESIS_HASH + canonicalJson(large)))
      // And a small record right after, so that the large one left nothing behind.
      expect(chainHash(GENESIS_HASH, base)).toBe(sha256(GENESIS_HASH + canonicalJson(base)))
    }
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 6_000 }), (reason) => {
        const record = { ...base, reason }
        expect(chainHash(GENESIS_HASH, record)).toBe(sha256(GENESIS_HASH + canonicalJson(record)))
      }),
      { numRuns: 200 }
    )
  })

  it("depends on the previous hash and ignores hash fields on the record", () => {
    const other = "f".repeat(64)
    expect(chainHash(other, base)).not.toBe(chainHash(GENESIS_HASH, base))
    const sealed = sealRecord(GENESIS_HASH, base)
    expect(chainHash(GENESIS_HASH, sealed)).toBe(sealed.hash)
    expect(chainHash(GENESIS_HASH, { ...base, rule: undefined })).toBe(chainHash(GENESIS_HASH, (({ rule: _, ...rest }) => rest)(base)))
  })

  it("seals a record that decodes as an AuditRecord and links to its predecessor", () => {
    const sealed = sealRecord(GENESIS_HASH, { ...base, call_stack: stack })
    expect(sealed.prev_hash).toBe(GENESIS_HASH)
    expect(Schema.decodeUnknownSync(AuditRecord)(sealed)).toEqual(sealed)
    const next = sealRecord(sealed.hash, { ...base, at: base.at + 1 })
    expect(next.prev_hash).toBe(sealed.hash)
  })
})

// ---------------------------------------------------------------------------
// verifyChain

describe("verifyChain", () => {
  it("accepts a sealed trail, and an empty one", () => {
    expect(verifyChain(trail)).toEqual({ ok: true, count: 4 })
    expect(verifyChain([])).toEqual({ ok: true, count: 0 })
  })

  it("accepts a trail after a JSON round trip through the schema", () => {
    const roundTripped = trail.map(({ offset, record }) => ({
      offset,
      record: Schema.decodeUnknownSync(Schema.parseJson(AuditRecord))(
        JSON.stringify(Schema.encodeSync(AuditRecord)(record))
      )
    }))
    expect(verifyChain(roundTripped)).toEqual({ ok: true, count: 4 })
  })

  it("verifies a segment from a given previous hash", () => {
    expect(verifyChain(trail.slice(2), { prevHash: trail[1].record.hash })).toEqual({ ok: true, count: 2 })
    expect(verifyChain(trail.slice(2))).toMatchObject({ ok: false, offset: trail[2].offset })
  })

  it("reports an edited field at that record", () => {
    const edited = trail.map((entry, i) => i === 1 ? { ...entry, record: { ...entry.record, reason: "fine" } } : entry)
    const result = verifyChain(edited)
    expect(result).toMatchObject({ ok: false, offset: trail[1].offset })
    expect(!result.ok && result.reason).toContain("does not match")
  })

  it("reports a record whose hash was recomputed after an edit at that record, not the next", () => {
    const forged = sealRecord(trail[1].record.prev_hash, { ...trail[1].record, reason: "fine" })
    const edited = trail.map((entry, i) => i === 1 ? { ...entry, record: forged } : entry)
    const result = verifyChain(edited)
    expect(result).toMatchObject({ ok: false, offset: trail[1].offset })
    expect(!result.ok && result.reason).toContain(`hash ${forged.hash} is not the one the next record (offset ${trail[2].offset})`)
    expect(!result.ok && result.reason).toContain(trail[1].record.hash)
  })

  it("reports removal, insertion and reordering where the chain breaks", () => {
    // The records after trail[0] are missing: the chain breaks right after it.
    const removed = verifyChain([trail[0], trail[2], trail[3]])
    expect(removed).toMatchObject({ ok: false, offset: trail[0].offset })
    expect(!removed.ok && removed.reason).toContain("removed")
    expect(verifyChain([trail[1], trail[0]])).toMatchObject({ ok: false, offset: trail[1].offset })
    const stray = { offset: 999, record: sealRecord(trail[0].record.hash, base) }
    const inserted = verifyChain([trail[0], stray, ...trail.slice(1)])
    expect(inserted).toMatchObject({ ok: false, offset: stray.offset })
    expect(!inserted.ok && inserted.reason).toContain("inserted")
    expect(verifyChain([trail[0], trail[0]])).toMatchObject({ ok: false, offset: trail[0].offset })
  })

  it("reports a first record that does not start at the genesis hash", () => {
    const result = verifyChain(chain([base], "a".repeat(64)))
    expect(result).toMatchObject({ ok: false, offset: 100 })
    expect(!result.ok && result.reason).toContain("genesis")
  })

  it("reports, rather than throws, a record that cannot be hashed", () => {
    const broken = trail.map((entry, i) => i === 3 ? { ...entry, record: { ...entry.record, at: Number.NaN } } : entry)
    const result = verifyChain(broken)
    expect(result).toMatchObject({ ok: false, offset: trail[3].offset })
    expect(!result.ok && result.reason).toContain("cannot be hashed")
  })

  it("stops at the first bad record and reads no further", () => {
    let read = 0
    function* entries() {
      for (const entry of [trail[0], { ...trail[1], record: { ...trail[1].record, action: "x" } }, trail[2]]) {
        read++
        yield entry
      }
    }
    expect(verifyChain(entries())).toMatchObject({ ok: false, offset: trail[1].offset })
    expect(read).toBe(2)
  })

  // ---- property: any single-field edit of any record is reported at that record

  const unsealed: fc.Arbitrary<UnsealedAuditRecord> = Arbitrary.make(AuditRecord).map(
    ({ hash: _hash, prev_hash: _prev, ...rest }) => rest
  )

  /** A value that differs from `value` in canonical form. */
  const changed = (value: unknown): unknown => {
    if (typeof value === "string") return value + "x"
    if (typeof value === "number") return value + 1 === value ? -value - 1 : value + 1
    if (typeof value === "boolean") return !value
    if (Array.isArray(value)) return [...value, "x"]
    if (value !== null && typeof value === "object") return { ...value, label: String((value as CallStackNode).label) + "x" }
    return "x"
  }

  const fields = [
    "agent_id", "action", "decision", "reason", "rule", "trace_id", "span_id", "lineage", "dry_run",
    "shadow_decision", "at", "call_stack", "prev_hash", "hash", "extra"
  ] as const

  it("reports any single-field edit, addition or removal at the edited record (property)", () => {
    fc.assert(
      fc.property(
        fc.array(unsealed, { minLength: 1, maxLength: 6 }),
        fc.nat(),
        fc.constantFrom(...fields),
        fc.boolean(),
        (records, pick, field, remove) => {
          const sealed = chain(records)
          expect(verifyChain(sealed)).toEqual({ ok: true, count: sealed.length })
          const index = pick % sealed.length
          const original = sealed[index].record as Record<string, unknown>
          const edit = { ...original }
          if (remove && field in original && original[field] !== undefined) delete edit[field]
          else edit[field] = changed(original[field])
          const tampered = sealed.map((entry, i) => i === index ? { ...entry, record: edit as unknown as AuditRecord } : entry)
          expect(verifyChain(tampered)).toMatchObject({ ok: false, offset: sealed[index].offset })
        }
      ),
      { numRuns: 300 }
    )
  })

  it("reports any edit whose hash was recomputed at the edited record, when a record follows it (property)", () => {
    fc.assert(
      fc.property(
        fc.array(unsealed, { minLength: 2, maxLength: 6 }),
        fc.nat(),
        // Not prev_hash: a record re-sealed on another prev_hash looks like a changed predecessor.
        fc.constantFrom(...fields.filter((field) => field !== "hash" && field !== "prev_hash")),
        (records, pick, field) => {
          const sealed = chain(records)
          const index = pick % (sealed.length - 1)
          const { hash: _, ...original } = sealed[index].record as Record<string, unknown>
          const edit = { ...original, [field]: changed(original[field]) } as unknown as AuditRecord
          const forged = sealRecord(edit.prev_hash, edit)
          const tampered = sealed.map((entry, i) => i === index ? { ...entry, record: forged } : entry)
          expect(verifyChain(tampered)).toMatchObject({ ok: false, offset: sealed[index].offset })
        }
      ),
      { numRuns: 300 }
    )
  })

  // ---- checkpoints: a head kept elsewhere

  /** The checkpoint of the first `records` records of `entries`. */
  const checkpointOf = (entries: ReadonlyArray<{ readonly record: AuditRecord }>, records: number) => ({
    records,
    head: records === 0 ? GENESIS_HASH : entries[records - 1].record.hash
  })

  /** `entries` with every record from `from` on replaced by `edit` of it, and re-sealed in order. */
  const rewriteFrom = (
    entries: ReadonlyArray<{ readonly offset: number; readonly record: AuditRecord }>,
    from: number,
    edit: (record: AuditRecord) => AuditRecord = (record) => record
  ) => {
    let prev = from === 0 ? GENESIS_HASH : entries[from - 1].record.hash
    return entries.map((entry, i) => {
      if (i < from) return entry
      const record = sealRecord(prev, edit(entry.record))
      prev = record.hash
      return { ...entry, record }
    })
  }

  it("accepts a trail against a checkpoint of any of its prefixes, and one that grew since", () => {
    for (let records = 0; records <= trail.length; records++) {
      expect(verifyChain(trail, { checkpoint: checkpointOf(trail, records) })).toEqual({ ok: true, count: trail.length })
      expect(verifyChain(trail.slice(0, records), { checkpoint: checkpointOf(trail, records) })).toEqual({ ok: true, count: records })
    }
  })

  it("reports, with a checkpoint, a trail cut short at its last record", () => {
    const checkpoint = checkpointOf(trail, 4)
    expect(verifyChain(trail.slice(0, 2))).toEqual({ ok: true, count: 2 })
    const cut = verifyChain(trail.slice(0, 2), { checkpoint })
    expect(cut).toMatchObject({ ok: false, offset: trail[1].offset })
    expect(!cut.ok && cut.reason).toContain("after 2 records, but the checkpoint counts 4")
    const emptied = verifyChain([], { checkpoint })
    expect(emptied).toMatchObject({ ok: false, offset: undefined })
    expect(!emptied.ok && emptied.reason).toContain("before any record")
  })

  it("reports, with a checkpoint, a tail rewritten with every hash recomputed at the checkpoint's record", () => {
    const rewritten = rewriteFrom(trail, 1, (record) => record.decision === "deny" ? { ...record, decision: "allow" } : record)
    expect(verifyChain(rewritten)).toEqual({ ok: true, count: 4 })
    for (const records of [2, 3, 4]) {
      const result = verifyChain(rewritten, { checkpoint: checkpointOf(trail, records) })
      expect(result).toMatchObject({ ok: false, offset: trail[records - 1].offset })
      expect(!result.ok && result.reason).toContain(`is not the checkpoint's head ${trail[records - 1].record.hash}`)
    }
    // Before the rewrite, the checkpoint still holds; past it, nothing can tell.
    expect(verifyChain(rewritten, { checkpoint: checkpointOf(trail, 1) })).toEqual({ ok: true, count: 4 })
  })

  it("reports, with a checkpoint, a trail cut and grown back to the same length", () => {
    const regrown = [...trail.slice(0, 2), ...chain([base, base], trail[1].record.hash).map((entry, i) => ({ ...entry, offset: 200 + i }))]
    expect(verifyChain(regrown)).toEqual({ ok: true, count: 4 })
    expect(verifyChain(regrown, { checkpoint: checkpointOf(trail, 4) })).toMatchObject({ ok: false, offset: 201 })
  })

  it("fails closed on a checkpoint that is not one", () => {
    const bad: ReadonlyArray<unknown> = [
      { records: -1, head: GENESIS_HASH },
      { records: 1.5, head: trail[0].record.hash },
      { records: "4", head: trail[3].record.hash },
      { records: Number.NaN, head: trail[3].record.hash },
      { records: 4 },
      { records: 0, head: "a".repeat(64) }
    ]
    for (const checkpoint of bad) {
      expect(verifyChain(trail, { checkpoint: checkpoint as AuditCheckpoint })).toMatchObject({ ok: false, offset: undefined })
    }
  })

  it("reports any cut before a checkpoint, and any rewrite up to it (property)", () => {
    fc.assert(
      fc.property(
        fc.array(unsealed, { minLength: 1, maxLength: 6 }),
        fc.nat(),
        fc.nat(),
        fc.constantFrom(...fields.filter((field) => field !== "hash" && field !== "prev_hash")),
        (records, pickCheckpoint, pickChange, field) => {
          const sealed = chain(records)
          const checkpoint = checkpointOf(sealed, 1 + pickCheckpoint % sealed.length)
          const cutTo = pickChange % checkpoint.records
          expect(verifyChain(sealed.slice(0, cutTo), { checkpoint })).toMatchObject({
            ok: false,
            offset: cutTo === 0 ? undefined : sealed[cutTo - 1].offset
          })
          const rewritten = rewriteFrom(sealed, cutTo, (record) => record === sealed[cutTo].record
            ? { ...record, [field]: changed((record as Record<string, unknown>)[field]) } as AuditRecord
            : record)
          expect(verifyChain(rewritten)).toEqual({ ok: true, count: sealed.length })
          expect(verifyChain(rewritten, { checkpoint })).toMatchObject({ ok: false, offset: sealed[checkpoint.records - 1].offset })
        }
      ),
      { numRuns: 300 }
    )
  })
})
