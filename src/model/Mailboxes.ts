/**
 * Mailboxes and their lanes (PROTOCOLS.md §1, "delivery order", "lanes"):
 * where each message waits for its recipient, in which order deliveries go
 * out (PRIVILEGED within its rate, then STANDARD, BULK's fair share), the
 * per-recipient gap-free `delivery_seq`, and each agent's dead letters.
 */
import type { RuntimeConfig } from "../schema/Config.js"
import type { CommunicationClass } from "../schema/Envelope.js"
import type { MessageDelivered } from "../schema/RouterEvents.js"
import { isAvailable } from "./Agents.js"
import { later } from "./Deadlines.js"
import { Deque } from "./Deque.js"
import { blockedReason } from "./Governance.js"
import { isTerminal, type MessageEntry } from "./Messages.js"
import { type RuntimeState, type Slice, sortedRecord } from "./State.js"

export interface QueueEntry {
  readonly id: string
  readonly enqueued: number
}

export interface Mailbox {
  readonly lanes: Readonly<Record<CommunicationClass, Deque<QueueEntry>>>
  queued: number
  inFlight: number
  /** The delivery_seq of the next delivery: per recipient, from 1, gap-free. */
  nextSeq: number
  /** Undefined while the bucket is full and untouched. */
  privilegedTokens: number | undefined
  privilegedRefilledAt: number
  /** Deliveries since the last BULK one. */
  sinceBulk: number
  /** Message ids, oldest first. */
  readonly deadLetters: Set<string>
}

export interface MailboxesState {
  readonly mailboxes: Map<string, Mailbox>
}

export const lanes: ReadonlyArray<CommunicationClass> = ["PRIVILEGED", "STANDARD", "BULK"]

const newMailbox = (): Mailbox => ({
  lanes: { PRIVILEGED: new Deque(), STANDARD: new Deque(), BULK: new Deque() },
  queued: 0,
  inFlight: 0,
  nextSeq: 1,
  privilegedTokens: undefined,
  privilegedRefilledAt: 0,
  sinceBulk: 0,
  deadLetters: new Set()
})

export const mailboxOf = (state: RuntimeState, agentId: string): Mailbox => {
  let mailbox = state.mailboxes.get(agentId)
  if (mailbox === undefined) {
    mailbox = newMailbox()
    state.mailboxes.set(agentId, mailbox)
  }
  return mailbox
}

/** Messages with the agent, queued or in flight. */
export const load = (state: RuntimeState, agentId: string) => {
  const mailbox = state.mailboxes.get(agentId)
  return mailbox === undefined ? 0 : mailbox.queued + mailbox.inFlight
}

/** Whether a queue entry still stands for its message: not moved, delivered or finished since. */
export const isQueuedEntry = (message: MessageEntry, entry: QueueEntry) =>
  message.location === "queued" && message.enqueued === entry.enqueued

/** Each message still queued in the agent's mailbox, lane by lane, first to be delivered first. */
export const queuedMessages = function*(state: RuntimeState, mailbox: Mailbox): Generator<MessageEntry> {
  for (const lane of lanes) {
    for (const entry of mailbox.lanes[lane]) {
      const message = state.messages.get(entry.id)
      if (message !== undefined && isQueuedEntry(message, entry)) yield message
    }
  }
}

// ---------------------------------------------------------------------------
// Delivering

const refilledTokens = (mailbox: Mailbox, config: RuntimeConfig, now: number) => {
  const burst = Math.max(1, config.privilegedPerSecond)
  if (mailbox.privilegedTokens === undefined) return burst
  const refill = ((now - mailbox.privilegedRefilledAt) * config.privilegedPerSecond) / 1000
  return Math.min(burst, mailbox.privilegedTokens + refill)
}

/**
 * Up to `credit` deliveries from the agent's mailbox, in lane order:
 * PRIVILEGED while its rate allows (beyond it, PRIVILEGED messages compete
 * with STANDARD in acceptance order), then STANDARD, and BULK when nothing
 * else waits. While BULK waits, one delivery in every `bulkEvery` is BULK,
 * before PRIVILEGED too: a PRIVILEGED stream within its rate would starve it.
 * Within a lane, first accepted is first delivered.
 */
export const decideDeliveries = (
  state: RuntimeState,
  config: RuntimeConfig,
  agentId: string,
  credit: number,
  now: number
): ReadonlyArray<MessageDelivered> => {
  const mailbox = state.mailboxes.get(agentId)
  if (mailbox === undefined || mailbox.queued === 0 || credit <= 0) return []
  // A suspended (or killed, or halted) agent receives nothing: its messages wait.
  if (!isAvailable(state.agents.get(agentId)) || blockedReason(state, agentId) !== undefined) return []

  const cursor = { PRIVILEGED: 0, STANDARD: 0, BULK: 0 }
  const head = (lane: CommunicationClass): MessageEntry | undefined => {
    const queue = mailbox.lanes[lane]
    while (cursor[lane] < queue.length) {
      const entry = queue.at(cursor[lane])
      const message = state.messages.get(entry.id)
      if (message !== undefined && isQueuedEntry(message, entry) && message.to === agentId) return message
      cursor[lane]++
    }
    return undefined
  }

  let tokens = refilledTokens(mailbox, config, now)
  let sinceBulk = mailbox.sinceBulk
  let seq = mailbox.nextSeq
  const ackDeadline = later(now, config.ackWaitMs)
  const deliveries: Array<MessageDelivered> = []
  while (deliveries.length < credit) {
    const privileged = head("PRIVILEGED")
    const standard = head("STANDARD")
    const bulk = head("BULK")
    let lane: CommunicationClass
    let message: MessageEntry
    if (bulk !== undefined && sinceBulk >= config.bulkEvery - 1) {
      ;[lane, message] = ["BULK", bulk]
    } else if (privileged !== undefined && tokens >= 1) {
      ;[lane, message] = ["PRIVILEGED", privileged]
    } else if (bulk !== undefined && privileged === undefined && standard === undefined) {
      ;[lane, message] = ["BULK", bulk]
    } else if (privileged !== undefined && (standard === undefined || privileged.order < standard.order)) {
      ;[lane, message] = ["STANDARD", privileged]
    } else if (standard !== undefined) {
      ;[lane, message] = ["STANDARD", standard]
    } else {
      break
    }
    cursor[message.lane]++
    if (lane === "PRIVILEGED") tokens -= 1
    sinceBulk = lane === "BULK" ? 0 : sinceBulk + 1
    if (message.expiresAt !== undefined && message.expiresAt <= now) continue
    deliveries.push({
      _tag: "MessageDelivered",
      message_id: message.id,
      to: agentId,
      attempt: message.attempts + 1,
      delivery_seq: seq++,
      lane,
      ack_deadline: ackDeadline,
      at: now
    } satisfies MessageDelivered)
  }
  return deliveries
}

// ---------------------------------------------------------------------------
// Evolve

/**
 * Where a message joins its lane: at the back when it is new, at the front
 * when it was delivered before (a redelivery), by acceptance order when it
 * was never delivered and moves from another mailbox.
 */
type Place = "back" | "front" | "by_order"

const enqueue = (state: RuntimeState, message: MessageEntry, place: Place) => {
  const mailbox = mailboxOf(state, message.to)
  message.location = "queued"
  message.enqueued++
  const entry = { id: message.id, enqueued: message.enqueued }
  const queue = mailbox.lanes[message.lane]
  if (place === "front") queue.pushFront(entry)
  else if (place === "back") queue.pushBack(entry)
  else queue.insert(positionByOrder(state, queue, message), entry)
  mailbox.queued++
}

/**
 * Behind the redeliveries and every message accepted before it, ahead of
 * those accepted after it: the lane stays FIFO per (producer, recipient) for
 * first deliveries. Walked from the back, where a moved message mostly goes.
 */
const positionByOrder = (state: RuntimeState, queue: Deque<QueueEntry>, message: MessageEntry) => {
  let index = queue.length
  for (; index > 0; index--) {
    const entry = queue.at(index - 1)
    const other = state.messages.get(entry.id)
    if (other !== undefined && isQueuedEntry(other, entry) && (other.order < message.order || other.attempts > 0)) break
  }
  return index
}

/** Takes the message out of its mailbox's counts; its queue entry goes stale. */
const leaveMailbox = (state: RuntimeState, message: MessageEntry) => {
  const mailbox = mailboxOf(state, message.to)
  if (message.location === "queued") mailbox.queued--
  else if (message.location === "in_flight") mailbox.inFlight--
  dropStaleHeads(state, mailbox)
}

const dropStaleHeads = (state: RuntimeState, mailbox: Mailbox) => {
  for (const lane of lanes) {
    const queue = mailbox.lanes[lane]
    while (queue.length > 0) {
      const entry = queue.at(0)
      const message = state.messages.get(entry.id)
      if (message !== undefined && isQueuedEntry(message, entry)) break
      queue.popFront()
    }
  }
}

/** Out of its mailbox for good, once `Messages.ts` has finished it (this runs after it, on the same event). */
const leaveIfFinished = (state: RuntimeState, event: { readonly message_id: string }) => {
  const message = state.messages.get(event.message_id)
  if (message === undefined || message.location === "done" || !isTerminal(message.stage)) return undefined
  leaveMailbox(state, message)
  message.location = "done"
  return message
}

export const mailboxesSlice: Slice<MailboxesState> = {
  initial: () => ({ mailboxes: new Map() }),
  evolve: {
    MessageAccepted: (state, event) => {
      const message = state.messages.get(event.envelope.message_id)
      if (message !== undefined) enqueue(state, message, "back")
    },
    MessageDelivered: (state, event, config) => {
      const message = state.messages.get(event.message_id)
      if (message === undefined) return
      const mailbox = mailboxOf(state, event.to)
      mailbox.queued--
      mailbox.inFlight++
      mailbox.nextSeq = event.delivery_seq + 1
      if (event.lane === "PRIVILEGED") {
        mailbox.privilegedTokens = refilledTokens(mailbox, config, event.at) - 1
        mailbox.privilegedRefilledAt = event.at
      }
      mailbox.sinceBulk = event.lane === "BULK" ? 0 : mailbox.sinceBulk + 1
      message.location = "in_flight"
      dropStaleHeads(state, mailbox)
    },
    MessageAcked: (state, event) => {
      const message = leaveIfFinished(state, event)
      if (message !== undefined && message.deadLetter) mailboxOf(state, message.to).deadLetters.add(message.id)
    },
    MessageTimedOut: (state, event) => {
      const message = leaveIfFinished(state, event)
      if (message !== undefined) mailboxOf(state, message.to).deadLetters.add(message.id)
    },
    MessageRequeued: (state, event) => {
      const message = state.messages.get(event.message_id)
      if (message === undefined || message.location === "done") return
      leaveMailbox(state, message)
      message.to = event.to
      enqueue(state, message, message.attempts > 0 ? "front" : "by_order")
    },
    MessageRedriven: (state, event) => {
      const message = state.messages.get(event.message_id)
      if (message === undefined || !mailboxOf(state, message.to).deadLetters.delete(event.message_id)) return
      message.to = event.to
      enqueue(state, message, "back")
    }
  },
  snapshot: (state) => ({
    mailboxes: sortedRecord(state.mailboxes, (mailbox) => ({
      queued: {
        PRIVILEGED: queuedIds(state, mailbox, "PRIVILEGED"),
        STANDARD: queuedIds(state, mailbox, "STANDARD"),
        BULK: queuedIds(state, mailbox, "BULK")
      },
      in_flight: mailbox.inFlight,
      next_delivery_seq: mailbox.nextSeq,
      dead_letters: [...mailbox.deadLetters]
    }))
  })
}

const queuedIds = (state: RuntimeState, mailbox: Mailbox, lane: CommunicationClass) => {
  const ids: Array<string> = []
  for (const entry of mailbox.lanes[lane]) {
    const message = state.messages.get(entry.id)
    if (message !== undefined && isQueuedEntry(message, entry)) ids.push(entry.id)
  }
  return ids
}
