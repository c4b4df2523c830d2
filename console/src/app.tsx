/**
 * The console's shell: sign-in with an API key, the navigation between
 * views (the location's hash: `#/agents`, `#/messages?message=ID`, ...,
 * so the browser's back button and a bookmark work), light and dark, and
 * the live log that operator views share.
 */
import { useEffect, useMemo, useState } from "preact/hooks"
import { type ApiError, LiveLog, type LiveStatus, makeApi } from "./api.js"
import type { Caller } from "./types.js"
import { asApiError, ErrorNote, isOperator, type Session, SessionContext } from "./ui.js"
import { views } from "./views/registry.js"

const keyStorage = "switchboard.key"
const themeStorage = "switchboard.theme"

const route = () => {
  const hash = location.hash.replace(/^#\/?/, "")
  const [path, search = ""] = hash.split("?")
  return { view: path || "agents", params: new URLSearchParams(search) }
}

const useRoute = () => {
  const [current, setCurrent] = useState(route)
  useEffect(() => {
    const onHash = () => setCurrent(route())
    addEventListener("hashchange", onHash)
    return () => removeEventListener("hashchange", onHash)
  }, [])
  return current
}

type Theme = "light" | "dark" | "system"

const useTheme = () => {
  const [theme, setTheme] = useState<Theme>(() => (localStorage.getItem(themeStorage) as Theme | null) ?? "system")
  useEffect(() => {
    if (theme === "system") delete document.documentElement.dataset.theme
    else document.documentElement.dataset.theme = theme
    localStorage.setItem(themeStorage, theme)
  }, [theme])
  return [theme, setTheme] as const
}

const SignIn = ({ onSignIn, error }: { readonly onSignIn: (key: string) => void; readonly error: ApiError | undefined }) => {
  const [key, setKey] = useState("")
  return (
    <main class="signin">
      <form
        onSubmit={(event) => {
          event.preventDefault()
          onSignIn(key.trim())
        }}
      >
        <h1>Switchboard</h1>
        <p>Sign in with an API key: an operator's key sees and steers everything, an agent's key its own agent.</p>
        <label class="field">
          <span>API key</span>
          <input
            type="password"
            name="key"
            autoComplete="off"
            autoFocus
            value={key}
            onInput={(event) => setKey(event.currentTarget.value)}
          />
        </label>
        <p class="hint">On a server run without keys (local development), sign in with the field empty.</p>
        <ErrorNote error={error} />
        <button type="submit" class="primary">Sign in</button>
      </form>
    </main>
  )
}

const LiveBadge = ({ live }: { readonly live: LiveLog }) => {
  const [status, setStatus] = useState<LiveStatus>(live.status)
  useEffect(() => live.onStatus(setStatus), [live])
  return <span class={`live ${status}`} title="the log's live stream">{status === "live" ? "● live" : status}</span>
}

export const App = () => {
  const [signed, setSigned] = useState<{ key: string; caller: Caller } | undefined>(undefined)
  const [error, setError] = useState<ApiError | undefined>(undefined)
  const [theme, setTheme] = useTheme()
  const current = useRoute()

  const signIn = async (key: string) => {
    setError(undefined)
    try {
      const caller = await makeApi(key).get<Caller>("/whoami")
      sessionStorage.setItem(keyStorage, key)
      setSigned({ key, caller })
    } catch (failure) {
      setError(asApiError(failure))
      sessionStorage.removeItem(keyStorage)
    }
  }
  useEffect(() => {
    const kept = sessionStorage.getItem(keyStorage)
    if (kept !== null) void signIn(kept)
  }, [])

  const session = useMemo<Session | undefined>(() => {
    if (signed === undefined) return undefined
    const api = makeApi(signed.key)
    const live = isOperator(signed.caller) ? new LiveLog(signed.key) : undefined
    return { api, caller: signed.caller, live, go: (path) => void (location.hash = `#/${path}`) }
  }, [signed])

  useEffect(() => {
    if (session?.live === undefined) return
    const live = session.live
    let stopped = false
    session.api.get<{ offset: number }>("/log/head").then(
      ({ offset }) => !stopped && live.start(offset + 1),
      () => !stopped && live.start(1)
    )
    return () => {
      stopped = true
      live.stop()
    }
  }, [session])

  if (session === undefined) return <SignIn onSignIn={signIn} error={error} />
  const operator = isOperator(session.caller)
  const available = views.filter((view) => operator || !view.operatorOnly)
  const view = available.find((candidate) => candidate.id === current.view) ?? available[0]
  const View = view.component
  return (
    <SessionContext.Provider value={session}>
      <div class="shell">
        <a class="skip" href="#main">Skip to the view</a>
        <nav aria-label="Views">
          <div class="brand">Switchboard</div>
          <ul>
            {available.map((candidate) => (
              <li key={candidate.id}>
                <a href={`#/${candidate.id}`} aria-current={candidate.id === view.id ? "page" : undefined}>{candidate.title}</a>
              </li>
            ))}
          </ul>
          <div class="who">
            <div>
              {operator ? "Operator" : `Agent ${session.caller.agent_id}`}
              {session.caller.open && <span class="badge warn" title="the server runs without keys">open</span>}
            </div>
            <div class="muted">key {session.caller.key_id}</div>
            {session.live !== undefined && <LiveBadge live={session.live} />}
            <label class="field compact">
              <span>Theme</span>
              <select value={theme} onChange={(event) => setTheme(event.currentTarget.value as Theme)}>
                <option value="system">system</option>
                <option value="light">light</option>
                <option value="dark">dark</option>
              </select>
            </label>
            <button
              type="button"
              onClick={() => {
                sessionStorage.removeItem(keyStorage)
                setSigned(undefined)
              }}
            >
              Sign out
            </button>
          </div>
        </nav>
        <main id="main" tabIndex={-1}>
          <View params={current.params} />
        </main>
      </div>
    </SessionContext.Provider>
  )
}
