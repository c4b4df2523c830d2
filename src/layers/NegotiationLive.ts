/**
 * The live negotiation rooms: a thin layer over the command loop. A wait for
 * a decision is registered in the loop (nothing slips between looking and
 * waiting), woken when the decision is durable, and bounded.
 */
import { Effect, Either, Layer, Schema } from "effect"
import { inputDecoder } from "../internal/decode.js"
import { decideProposal, decideVote, decisionView, roomView, selectRooms } from "../model/Negotiation.js"
import type { RuntimeState } from "../model/State.js"
import { NotFound } from "../schema/CoordinationErrors.js"
import { copyJson } from "../schema/Json.js"
import { type DecisionView, ProposalRequest, RoomId, RoomsFilter, VoteRequest, WaitRequest } from "../schema/Negotiation.js"
import { Negotiation } from "../services/Negotiation.js"
import { Runtime } from "../services/Runtime.js"
import { bounded, commands, defaultWaitMs } from "./Coordinated.js"
import { fieldOf, idOf, traced } from "./Spans.js"
import * as Waiters from "./Waiters.js"
import type { Look } from "./Waiters.js"

const strict = { onExcessProperty: "error" } as const
const validProposal = (input: unknown) =>
  Either.map(inputDecoder(ProposalRequest, "proposal", strict)(input), (request) =>
    request.artifact === undefined ? request : { ...request, artifact: copyJson(request.artifact) })
const validVote = inputDecoder(VoteRequest, "vote", strict)
const validWait = inputDecoder(WaitRequest, "wait", strict)
const validRoomId = inputDecoder(RoomId, "negotiation_room_id")
const validFilter = inputDecoder(Schema.UndefinedOr(RoomsFilter), "rooms", strict)

export const layer: Layer.Layer<Negotiation, never, Runtime> = Layer.scoped(
  Negotiation,
  Effect.gen(function*() {
    const runtime = yield* Runtime
    const command = commands(runtime)
    const waiters = Waiters.make<void, DecisionView>(runtime.query)

    yield* runtime.extend({
      committed: (events, state) => {
        for (const event of events) {
          if (event._tag !== "RoomDecided" && event._tag !== "RoomResolved") continue
          const room = state.rooms.get(event.room_id)
          const decision = room === undefined ? undefined : decisionView(room)
          if (decision !== undefined && waiters.has(event.room_id)) waiters.wake(event.room_id, () => decision)
        }
      },
      stopped: waiters.failAll
    })

    const read = <A>(roomId: unknown, f: (state: RuntimeState, id: string) => A | undefined) =>
      Effect.flatMap(validRoomId(roomId), (id) =>
        Effect.flatMap(runtime.query((state) => f(state, id)), (found) =>
          found === undefined ? Effect.fail(new NotFound({ what: "room", id })) : Effect.succeed(found)))

    const afterwards = <E>(effect: (input: unknown) => Effect.Effect<{ readonly negotiation_room_id: string }, E>) => (input: unknown) =>
      Effect.flatMap(effect(input), (room) => read(room.negotiation_room_id, (state, id) => {
        const found = state.rooms.get(id)
        return found === undefined ? undefined : roomView(found)
      }))

    const ofRoom = (request: unknown) => ({ room_id: idOf(fieldOf(request, "negotiation_room_id")) })

    return Negotiation.of({
      submitProposal: traced("Negotiation.submitProposal", command(validProposal, decideProposal), ofRoom),
      submitVote: traced("Negotiation.submitVote", afterwards(command(validVote, decideVote)), (request) => ({
        ...ofRoom(request),
        agent_id: idOf(fieldOf(request, "critic_id"))
      })),
      rooms: traced("Negotiation.rooms", (filter) =>
        Effect.flatMap(validFilter(filter), (valid) => runtime.query((state) => selectRooms(state, valid ?? {})))),
      room: traced("Negotiation.room", (roomId) => read(roomId, (state, id) => {
        const room = state.rooms.get(id)
        return room === undefined ? undefined : roomView(room)
      }), (id) => ({ room_id: idOf(id) })),
      decision: traced("Negotiation.decision", (roomId) =>
        Effect.map(read(roomId, (state, id) => {
          const room = state.rooms.get(id)
          return room === undefined ? undefined : { decision: decisionView(room) }
        }), ({ decision }) => decision), (id) => ({ room_id: idOf(id) })),
      waitForDecision: traced("Negotiation.waitForDecision", (input) =>
        Effect.flatMap(validWait(input), ({ negotiation_room_id: id, timeout_ms }) =>
          bounded(
            waiters.await(id, (state): Look<void, DecisionView> => {
              const room = state.rooms.get(id)
              if (room === undefined) return { _tag: "Absent" }
              const decision = decisionView(room)
              return decision === undefined ? { _tag: "Wait", wants: undefined } : { _tag: "Now", value: decision }
            }, () => new NotFound({ what: "room", id })),
            timeout_ms ?? defaultWaitMs,
            "decision",
            id
          )), ofRoom)
    })
  })
)
