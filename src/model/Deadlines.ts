/**
 * A min-heap of deadlines. Entries are never removed when they stop
 * mattering: the owner checks validity when one comes up (lazy deletion).
 */
/**
 * `ms` after `at`, saturating at the largest safe integer: an event's times
 * must stay safe integers, and a huge TTL or timeout means "never" anyway.
 */
export const later = (at: number, ms: number): number => Math.min(at + ms, Number.MAX_SAFE_INTEGER)

export interface Deadline<Kind extends string = string> {
  readonly at: number
  readonly kind: Kind
  readonly id: string
}

export class Deadlines<Kind extends string = string> {
  private readonly heap: Array<Deadline<Kind>> = []

  get size(): number {
    return this.heap.length
  }

  peek(): Deadline<Kind> | undefined {
    return this.heap[0]
  }

  push(deadline: Deadline<Kind>): void {
    const heap = this.heap
    heap.push(deadline)
    let i = heap.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (heap[parent].at <= heap[i].at) break
      ;[heap[parent], heap[i]] = [heap[i], heap[parent]]
      i = parent
    }
  }

  pop(): Deadline<Kind> | undefined {
    const heap = this.heap
    const top = heap[0]
    const last = heap.pop()
    if (heap.length > 0 && last !== undefined) {
      heap[0] = last
      let i = 0
      for (;;) {
        const left = 2 * i + 1
        const right = left + 1
        let smallest = i
        if (left < heap.length && heap[left].at < heap[smallest].at) smallest = left
        if (right < heap.length && heap[right].at < heap[smallest].at) smallest = right
        if (smallest === i) break
        ;[heap[smallest], heap[i]] = [heap[i], heap[smallest]]
        i = smallest
      }
    }
    return top
  }

  /** Every entry due at `now`, without removing any (the heap order lets the walk stop early). */
  due(now: number): Array<Deadline<Kind>> {
    const found: Array<Deadline<Kind>> = []
    const stack = this.heap.length > 0 ? [0] : []
    while (stack.length > 0) {
      const i = stack.pop()!
      if (this.heap[i].at > now) continue
      found.push(this.heap[i])
      if (2 * i + 1 < this.heap.length) stack.push(2 * i + 1)
      if (2 * i + 2 < this.heap.length) stack.push(2 * i + 2)
    }
    return found.sort((a, b) => a.at - b.at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  }
}
