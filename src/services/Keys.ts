/**
 * Who a caller of the network edge is: the API key it presents, checked
 * against the keys the operator issued. The edge asks this service once per
 * request (or per session) and acts as the `Principal` it answers, so every
 * transport authenticates the same way.
 *
 * Implementations are in `layers/KeysLive.ts`: a keys file, or "open" for
 * local development, where there are no keys and every caller is the
 * operator.
 */
import { Context, type Effect, type Option } from "effect"
import type { Principal } from "../schema/Keys.js"

export class Keys extends Context.Tag("switchboard/Keys")<Keys, {
  /**
   * True when no keys are checked and every caller is the operator. An edge
   * may then skip asking for a key, and should say loudly that it is open.
   */
  readonly open: boolean
  /**
   * The principal whose key `token` is (the bearer token as sent, without
   * `Bearer `), or `None` for anything else: a wrong, revoked, empty,
   * malformed or oversized token alike, so a caller learns nothing from how
   * it was refused. Never fails; cheap for garbage.
   */
  readonly authenticate: (token: string) => Effect.Effect<Option.Option<Principal>>
}>() {}
