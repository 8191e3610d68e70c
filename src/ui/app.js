// Entry point of the web UI: hash routes (the server serves one page), the login form, the frame.
import { html, render } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import { api, getToken, setToken, whenUnauthorized } from './api.js';
import { RunPage } from './run.js';
import { ArtifactPage, ArtifactsPage, RunsPage, WorkflowPage, WorkflowsPage } from './views.js';

/** `#/runs/x?phase=Failed` -> { parts: ['runs', 'x'], query: URLSearchParams } */
function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [path, q] = raw.split('?');
  return {
    parts: (path ?? '').split('/').filter(Boolean).map(decodeURIComponent),
    query: new URLSearchParams(q ?? ''),
  };
}

function useRoute() {
  const [route, setRoute] = useState(parseHash());
  useEffect(() => {
    const on = () => setRoute(parseHash());
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return route;
}

function Login({ onDone, failed }) {
  const [value, setValue] = useState('');
  const submit = (e) => {
    e.preventDefault();
    setToken(value.trim());
    onDone();
  };
  return html`<section class="login">
    <h1>Sign in</h1>
    <p>This server needs its API token (the value of <code>MESON_API_TOKEN</code>).
      It is kept in this tab only (sessionStorage) and sent as an Authorization header.</p>
    ${failed && html`<p class="error" role="alert">That token was refused.</p>`}
    <form onSubmit=${submit}>
      <label for="token">API token</label>
      <input id="token" type="password" autocomplete="current-password" value=${value}
        onInput=${(e) => setValue(e.currentTarget.value)} required />
      <button type="submit">Sign in</button>
    </form>
  </section>`;
}

function App() {
  const route = useRoute();
  // undefined: checking; true: the API answers; false: it wants a token
  const [authed, setAuthed] = useState(undefined);
  const [failed, setFailed] = useState(false);
  const check = () =>
    api('/namespaces/default/workflows?limit=1')
      .then(() => setAuthed(true))
      .catch((e) => {
        if (e.status === 401) {
          setFailed(getToken() !== '');
          setAuthed(false);
        } else setAuthed(true);
      });
  useEffect(() => {
    whenUnauthorized(() => setAuthed(false));
    check();
  }, []);
  const [top, name] = route.parts;
  let page;
  if (authed === undefined) page = html`<p class="muted">Loading…</p>`;
  else if (!authed) page = html`<${Login} failed=${failed} onDone=${check} />`;
  else if (top === 'runs' && name) page = html`<${RunPage} key=${name} name=${name} />`;
  else if (top === 'runs') page = html`<${RunsPage} query=${route.query} />`;
  else if (top === 'workflows' && name) page = html`<${WorkflowPage} key=${name} name=${name} />`;
  else if (top === 'artifacts' && name) page = html`<${ArtifactPage} key=${name} name=${name} />`;
  else if (top === 'artifacts') page = html`<${ArtifactsPage} />`;
  else page = html`<${WorkflowsPage} />`;
  const here = (t) => ((top ?? 'workflows') === t ? 'page' : undefined);
  return html`<header>
      <a class="brand" href="#/">Meson</a>
      <nav aria-label="Main">
        <a href="#/workflows" aria-current=${here('workflows')}>Workflows</a>
        <a href="#/runs" aria-current=${here('runs')}>Runs</a>
        <a href="#/artifacts" aria-current=${here('artifacts')}>Artifacts</a>
      </nav>
      ${
        authed &&
        getToken() &&
        html`<button class="link" onClick=${() => {
          setToken('');
          setFailed(false);
          setAuthed(false);
        }}>Sign out</button>`
      }
    </header>
    <main id="main">${page}</main>`;
}

const root = document.getElementById('app');
root.textContent = '';
render(html`<${App} />`, root);
