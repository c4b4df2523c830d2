/**
 * The console's building blocks: the session (key, caller, live log) every
 * view reads from context, a virtualized list for the thousands of agents
 * and the hundred thousand records, data hooks that load, poll and follow
 * the log, and small pieces (errors, times, a confirmation dialog).
 */
import type { ComponentChildren } from "preact"
import { createContext } from "preact"
import { useCallback, useContext, useEffect, useLayoutEffect, useRef, useState } from "preact/hooks"
import { type Api, ApiError, type LiveLog } from "./api.js"
import type { Caller, LogRecord } from "./types.js"

export interface Session {
  readonly api: Api
  readonly caller: Caller
  /** The operator's live log; undefined for an agent's key (the log is the operator's). */
  readonly live: LiveLog | undefined
  readonly go: (path: string) => void
}

export const SessionContext = createContext<Session | undefined>(undefined)

export const useSession = (): Session => {
  const session = useContext(SessionContext)
  if (session === undefined) throw new Error("no session")
  return session
}

export const isOperator = (caller: Caller) => caller.role === "operator"

// ---------------------------------------------------------------------------
// Data

export interface Loaded<A> {
  readonly data: A | undefined
  readonly error: ApiError | undefined
  readonly loading: boolean
  readonly reload: () => void
}

/**
 * `load` run now, again whenever `deps` change or `reload` is called, and
 * (with `every` ms) on a timer; with `when`, also soon after any live record
 * that passes it (at most once a second, however busy the log).
 */
export const useLoad = <A,>(
  load: () => Promise<A>,
  deps: ReadonlyArray<unknown>,
  options: { readonly every?: number; readonly when?: (record: LogRecord) => boolean } = {}
): Loaded<A> => {
  const [state, setState] = useState<{ data: A | undefined; error: ApiError | undefined; loading: boolean }>({
    data: undefined,
    error: undefined,
    loading: true
  })
  const { live } = useSession()
  const generation = useRef(0)
  const run = useCallback(() => {
    const mine = ++generation.current
    setState((previous) => ({ ...previous, loading: true }))
    load().then(
      (data) => mine === generation.current && setState({ data, error: undefined, loading: false }),
      (error) => mine === generation.current && setState((previous) => ({ ...previous, error: asApiError(error), loading: false }))
    )
  }, deps)
  useEffect(run, [run])
  useEffect(() => {
    if (options.every === undefined) return
    const timer = window.setInterval(run, options.every)
    return () => window.clearInterval(timer)
  }, [run, options.every])
  const when = useRef(options.when)
  when.current = options.when
  useEffect(() => {
    if (live === undefined) return
    let timer: number | undefined
    let last = 0
    const unlisten = live.listen((records) => {
      if (when.current === undefined || !records.some(when.current) || timer !== undefined) return
      const wait = Math.max(0, 1000 - (performance.now() - last))
      timer = window.setTimeout(() => {
        timer = undefined
        last = performance.now()
        run()
      }, wait)
    })
    return () => {
      unlisten()
      if (timer !== undefined) window.clearTimeout(timer)
    }
  }, [live, run])
  return { ...state, reload: run }
}

/**
 * A list route's pages (`after`, `limit`, each answer's `next`), one more
 * each time `more` is called (as the list scrolls to its end). A reload (a
 * change of `deps`, the timer, a live record, as `useLoad`) reads again
 * every page shown so far, so the rows on screen follow the runtime too.
 */
export const usePages = <A,>(
  page: (after: string | undefined) => Promise<{ readonly items: ReadonlyArray<A>; readonly next?: string | undefined }>,
  deps: ReadonlyArray<unknown>,
  options: { readonly every?: number; readonly when?: (record: LogRecord) => boolean } = {}
) => {
  const [pages, setPages] = useState(1)
  // Another filter starts from its first page.
  useEffect(() => setPages(1), deps)
  const loaded = useLoad(async () => {
    const items: Array<A> = []
    let after: string | undefined
    for (let read = 0; read < pages; read++) {
      const body = await page(after)
      items.push(...body.items)
      after = body.next
      if (after === undefined) break
    }
    return { items, next: after }
  }, [...deps, pages], options)
  const { data, loading } = loaded
  const more = useCallback(() => {
    if (!loading && data?.next !== undefined) setPages((count) => count + 1)
  }, [loading, data])
  return { ...loaded, items: data?.items ?? [], more: data?.next !== undefined, loadMore: more }
}

export const asApiError = (error: unknown) =>
  error instanceof ApiError ? error : new ApiError(0, "ERROR", error instanceof Error ? error.message : String(error), undefined)

/** The current time, ticking each second: for countdowns. */
export const useNow = (every = 1000) => {
  const [now, setNow] = useState(() => Date.now())
  useEffect(() => {
    const timer = window.setInterval(() => setNow(Date.now()), every)
    return () => window.clearInterval(timer)
  }, [every])
  return now
}

/** An action's state: running, and its last error or result line. */
export const useAction = () => {
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<ApiError | undefined>(undefined)
  const [done, setDone] = useState<string | undefined>(undefined)
  const run = useCallback(async (action: () => Promise<string | undefined | void>) => {
    setBusy(true)
    setError(undefined)
    setDone(undefined)
    try {
      setDone((await action()) ?? undefined)
    } catch (failure) {
      setError(asApiError(failure))
    } finally {
      setBusy(false)
    }
  }, [])
  return { busy, error, done, run }
}

// ---------------------------------------------------------------------------
// Pieces

export const ErrorNote = ({ error }: { readonly error: ApiError | undefined }) =>
  error === undefined ? null : (
    <p class="error" role="alert">
      {error.code !== "ERROR" && <strong>{error.code}</strong>} {error.message}
    </p>
  )

export const Done = ({ text }: { readonly text: string | undefined }) =>
  text === undefined ? null : <p class="done" role="status">{text}</p>

const pad = (n: number) => String(n).padStart(2, "0")

export const time = (ms: number | undefined) => {
  if (ms === undefined) return ""
  const date = new Date(ms)
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`
}

export const duration = (ms: number) => {
  if (ms <= 0) return "0s"
  const seconds = Math.floor(ms / 1000)
  const h = Math.floor(seconds / 3600)
  const m = Math.floor((seconds % 3600) / 60)
  const s = seconds % 60
  return h > 0 ? `${h}h ${pad(m)}m` : m > 0 ? `${m}m ${pad(s)}s` : `${s}s`
}

export const Badge = ({ tone, children }: { readonly tone?: "ok" | "warn" | "bad" | "info"; readonly children: ComponentChildren }) => (
  <span class={`badge ${tone ?? ""}`}>{children}</span>
)

export const Field = ({ label, children }: { readonly label: string; readonly children: ComponentChildren }) => (
  <label class="field">
    <span>{label}</span>
    {children}
  </label>
)

export const Page = ({ title, actions, children }: { readonly title: string; readonly actions?: ComponentChildren; readonly children: ComponentChildren }) => (
  <section class="page" aria-labelledby="page-title">
    <header class="page-head">
      <h1 id="page-title">{title}</h1>
      <div class="page-actions">{actions}</div>
    </header>
    {children}
  </section>
)

/**
 * A confirmation with a reason, in a modal `<dialog>` (focus is trapped
 * there and Escape cancels, as the browser does for it).
 */
export const Confirm = (props: {
  readonly title: string
  readonly text: string
  readonly confirm: string
  /** Ask for a reason (required when `reasonRequired`). */
  readonly reason?: boolean
  readonly reasonRequired?: boolean
  readonly danger?: boolean
  readonly onConfirm: (reason: string) => void
  readonly onClose: () => void
}) => {
  const dialog = useRef<HTMLDialogElement>(null)
  const [reason, setReason] = useState("")
  useLayoutEffect(() => {
    dialog.current?.showModal()
  }, [])
  const submit = (event: Event) => {
    event.preventDefault()
    if (props.reasonRequired === true && reason.trim() === "") return
    dialog.current?.close()
    props.onConfirm(reason.trim())
  }
  return (
    <dialog ref={dialog} class="confirm" onClose={props.onClose} aria-labelledby="confirm-title">
      <form method="dialog" onSubmit={submit}>
        <h2 id="confirm-title">{props.title}</h2>
        <p>{props.text}</p>
        {props.reason === true && (
          <Field label={props.reasonRequired === true ? "Reason (required)" : "Reason"}>
            <input
              name="reason"
              value={reason}
              required={props.reasonRequired}
              maxLength={1000}
              onInput={(event) => setReason(event.currentTarget.value)}
              autoFocus
            />
          </Field>
        )}
        <div class="row">
          <button type="button" onClick={() => dialog.current?.close()}>Cancel</button>
          <button type="submit" class={props.danger === true ? "danger" : "primary"}>{props.confirm}</button>
        </div>
      </form>
    </dialog>
  )
}

// ---------------------------------------------------------------------------
// The virtualized list

/**
 * A list of any length that renders only the rows in view (rows of one
 * fixed height), keyboard usable: focus it, move with the arrows, Page
 * Up/Down, Home and End, open the active row with Enter.
 */
export const VirtualList = <A,>(props: {
  readonly items: ReadonlyArray<A>
  readonly rowHeight: number
  readonly height?: string
  readonly label: string
  readonly row: (item: A, index: number) => ComponentChildren
  readonly keyOf: (item: A) => string
  readonly selected?: string | undefined
  readonly onActivate?: (item: A) => void
  /** Called when the last rows come into view: load more. */
  readonly onEnd?: () => void
  readonly header?: ComponentChildren
}) => {
  const box = useRef<HTMLDivElement>(null)
  const [scroll, setScroll] = useState({ top: 0, height: 600 })
  const [active, setActive] = useState(0)
  const { items, rowHeight } = props
  useLayoutEffect(() => {
    const element = box.current
    if (element === null) return
    const measure = () => setScroll({ top: element.scrollTop, height: element.clientHeight })
    measure()
    const observer = new ResizeObserver(measure)
    observer.observe(element)
    return () => observer.disconnect()
  }, [])
  const first = Math.max(0, Math.floor(scroll.top / rowHeight) - 5)
  const last = Math.min(items.length, Math.ceil((scroll.top + scroll.height) / rowHeight) + 5)
  const onEnd = props.onEnd
  useEffect(() => {
    if (onEnd !== undefined && items.length > 0 && last >= items.length - 5) onEnd()
  }, [last, items.length, onEnd])
  const moveTo = (index: number) => {
    const target = Math.max(0, Math.min(items.length - 1, index))
    setActive(target)
    const element = box.current
    if (element === null) return
    const top = target * rowHeight
    if (top < element.scrollTop) element.scrollTop = top
    else if (top + rowHeight > element.scrollTop + element.clientHeight) element.scrollTop = top + rowHeight - element.clientHeight
  }
  const page = Math.max(1, Math.floor(scroll.height / rowHeight) - 1)
  const onKeyDown = (event: KeyboardEvent) => {
    const moves: Record<string, number> = { ArrowDown: active + 1, ArrowUp: active - 1, PageDown: active + page, PageUp: active - page, Home: 0, End: items.length - 1 }
    if (event.key in moves) {
      event.preventDefault()
      moveTo(moves[event.key])
    } else if (event.key === "Enter" && items[active] !== undefined) {
      event.preventDefault()
      props.onActivate?.(items[active])
    }
  }
  const rows = []
  for (let i = first; i < last; i++) {
    const item = items[i]
    const key = props.keyOf(item)
    rows.push(
      <div
        key={key}
        role="row"
        class={`vrow${i === active ? " active" : ""}${key === props.selected ? " selected" : ""}`}
        style={{ top: `${i * rowHeight}px`, height: `${rowHeight}px` }}
        onClick={() => {
          setActive(i)
          props.onActivate?.(item)
        }}
        data-key={key}
      >
        {props.row(item, i)}
      </div>
    )
  }
  return (
    <div class="vlist-wrap">
      {props.header !== undefined && <div class="vrow vhead" role="row">{props.header}</div>}
      <div
        ref={box}
        class="vlist"
        role="grid"
        aria-label={props.label}
        aria-rowcount={items.length}
        tabIndex={0}
        style={{ height: props.height ?? "60vh" }}
        onScroll={(event) => setScroll({ top: event.currentTarget.scrollTop, height: event.currentTarget.clientHeight })}
        onKeyDown={onKeyDown}
      >
        <div style={{ height: `${items.length * rowHeight}px`, position: "relative" }}>{rows}</div>
      </div>
    </div>
  )
}
