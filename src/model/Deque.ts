/**
 * A double-ended queue on a growable ring buffer: O(1) at both ends, and
 * access by position for walking without removing and for the rare insert
 * in between.
 */
export class Deque<A> {
  private items: Array<A | undefined> = new Array(16)
  private head = 0
  private count = 0

  get length(): number {
    return this.count
  }

  at(index: number): A {
    return this.items[(this.head + index) & (this.items.length - 1)] as A
  }

  pushBack(item: A): void {
    if (this.count === this.items.length) this.grow()
    this.items[(this.head + this.count) & (this.items.length - 1)] = item
    this.count++
  }

  pushFront(item: A): void {
    if (this.count === this.items.length) this.grow()
    this.head = (this.head - 1) & (this.items.length - 1)
    this.items[this.head] = item
    this.count++
  }

  /** Puts `item` at `index`, moving the items after it back by one: O(1) at either end. */
  insert(index: number, item: A): void {
    if (index <= 0) return this.pushFront(item)
    if (index >= this.count) return this.pushBack(item)
    if (this.count === this.items.length) this.grow()
    const mask = this.items.length - 1
    for (let i = this.count; i > index; i--) this.items[(this.head + i) & mask] = this.items[(this.head + i - 1) & mask]
    this.items[(this.head + index) & mask] = item
    this.count++
  }

  popFront(): A | undefined {
    if (this.count === 0) return undefined
    const item = this.items[this.head]
    this.items[this.head] = undefined
    this.head = (this.head + 1) & (this.items.length - 1)
    this.count--
    return item
  }

  *[Symbol.iterator](): IterableIterator<A> {
    for (let i = 0; i < this.count; i++) yield this.at(i)
  }

  private grow(): void {
    const next: Array<A | undefined> = new Array(this.items.length * 2)
    for (let i = 0; i < this.count; i++) next[i] = this.at(i)
    this.items = next
    this.head = 0
  }
}
