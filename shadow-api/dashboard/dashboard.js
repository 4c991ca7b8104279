// The dashboard's only script: asks for the admin token once (kept in this tab's
// sessionStorage), reads GET /admin/overview every REFRESH_MS and draws it, and sends the
// rollout buttons to /admin/rollout. Data is put in the page as text nodes, never as HTML, so a
// value in a comparison sample cannot run as script.

(() => {
  const TOKEN_KEY = 'cqrs-migrate.adminToken';
  const REFRESH_MS = 2000;
  const OUTCOMES = ['match', 'mismatch', 'missing', 'lag', 'error'];
  const ui = { timer: null, busy: false, rollbackTo: {} };
  const $ = (id) => document.getElementById(id);

  /** An element with attributes (class, title, data-*, …) and children (text, nodes, arrays, null). */
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs ?? {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === 'style') Object.assign(el.style, value);
      else el.setAttribute(name, value === true ? '' : String(value));
    }
    const add = (child) => {
      if (child === null || child === undefined || child === false) return;
      if (Array.isArray(child)) child.forEach(add);
      else el.append(child instanceof Node ? child : String(child));
    };
    children.forEach(add);
    return el;
  }

  const table = (head, rows) =>
    h(
      'table',
      null,
      h(
        'thead',
        null,
        h(
          'tr',
          null,
          head.map((t) => h('th', null, t)),
        ),
      ),
      h('tbody', null, rows),
    );
  const time = (iso) => (iso ? new Date(iso).toLocaleTimeString() : '');
  const pct = (rate) => (rate === null || rate === undefined ? '—' : `${(rate * 100).toFixed(2)}%`);
  const json = (value) => (value === undefined ? '(absent)' : JSON.stringify(value));
  const modeText = (flag) => (flag.percent === undefined ? flag.mode : `${flag.mode} ${flag.percent}%`);

  class Unauthorized extends Error {}

  async function api(method, path, body) {
    const headers = { authorization: `Bearer ${sessionStorage.getItem(TOKEN_KEY) ?? ''}` };
    const reason = $('reason').value.trim();
    if (method !== 'GET' && reason !== '') headers['x-cqrs-reason'] = reason;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(path, {
      method,
      headers,
      cache: 'no-store',
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const data = await res.json().catch(() => null);
    if (res.status === 401) {
      sessionStorage.removeItem(TOKEN_KEY);
      showLogin('The API refused this token; enter it again.');
      throw new Unauthorized();
    }
    return { ok: res.ok, status: res.status, data };
  }

  function setStatus(text, cls) {
    const el = $('status');
    el.textContent = text;
    el.className = cls ?? 'muted';
  }

  function showLogin(message) {
    clearTimeout(ui.timer);
    $('board').hidden = true;
    $('forget').hidden = true;
    $('login').hidden = false;
    $('login-error').textContent = message ?? '';
    setStatus('not connected');
    $('token').focus();
  }

  function showBoard() {
    $('login').hidden = true;
    $('login-error').textContent = '';
    $('board').hidden = false;
    $('forget').hidden = false;
  }

  async function refresh() {
    clearTimeout(ui.timer);
    try {
      const r = await api('GET', 'overview');
      if (r.ok) {
        render(r.data);
        setStatus(`updated ${time(r.data.generatedAt)} · refreshes every ${REFRESH_MS / 1000} s`);
      } else {
        setStatus(`overview failed: ${r.data?.message ?? r.status}`, 'bad');
      }
    } catch (err) {
      if (err instanceof Unauthorized) return;
      setStatus(`API unreachable: ${err.message}`, 'bad');
    }
    ui.timer = setTimeout(refresh, REFRESH_MS);
  }

  function render(o) {
    $('health').replaceChildren(renderHealth(o.health, o.queue));
    // An open drop-down would close under the operator's pointer if redrawn.
    const choosing =
      document.activeElement?.tagName === 'SELECT' && $('rollout').contains(document.activeElement);
    if (!choosing) $('rollout').replaceChildren(renderRollout(o.rollout));
    $('endpoints').replaceChildren(...o.domains.map((d) => renderDomain(d, o)));
    $('audit').replaceChildren(renderAudit(o.audit));
  }

  function renderHealth(health, queue) {
    const lag =
      health.lagSeconds === null
        ? h('span', { class: 'muted' }, 'not measured')
        : h(
            'span',
            {
              class: health.maxLagSeconds !== null && health.lagSeconds > health.maxLagSeconds ? 'bad' : 'ok',
            },
            `${health.lagSeconds.toFixed(1)} s`,
            health.maxLagSeconds === null ? '' : ` (limit ${health.maxLagSeconds} s)`,
          );
    const dead =
      health.deadLetters === null
        ? h('span', { class: 'muted' }, 'not counted here')
        : h('span', { class: health.deadLetters > 0 ? 'warn' : 'ok' }, String(health.deadLetters));
    return table(
      ['Ready', 'CDC lag', 'Dead letters', 'Comparison queue', 'Problems'],
      h(
        'tr',
        null,
        h(
          'td',
          { id: 'ready' },
          h('span', { class: health.ready ? 'ok' : 'bad' }, health.ready ? 'ready' : 'unready'),
        ),
        h('td', { id: 'lag' }, lag),
        h('td', { id: 'dead-letters' }, dead),
        h('td', null, `${queue.depth} waiting, ${queue.running} running, ${queue.dropped} dropped`),
        h(
          'td',
          null,
          health.problems.length === 0
            ? h('span', { class: 'muted' }, 'none')
            : h(
                'ul',
                null,
                health.problems.map((p) => h('li', { class: 'bad' }, `${p.component}: ${p.reason}`)),
              ),
        ),
      ),
    );
  }

  function gateList(results) {
    return h(
      'ul',
      { class: 'gates' },
      results.map((g) =>
        h(
          'li',
          { class: g.pass ? 'pass' : 'fail', 'data-gate': g.gate },
          `${g.pass ? 'PASS' : 'FAIL'} ${g.gate}: ${g.detail}`,
        ),
      ),
    );
  }

  function renderRollout(targets) {
    if (targets === null)
      return h('p', { class: 'muted' }, 'This API runs without a rollout controller (flags only).');
    return table(
      ['Target', 'Stage', 'Since', 'Next step and its gates', 'Actions'],
      targets.map((t) => {
        const stage = t.state.percent === undefined ? t.state.stage : `${t.state.stage} ${t.state.percent}%`;
        const next =
          t.next === null
            ? h('span', { class: 'muted' }, 'none (retired)')
            : [
                h(
                  'div',
                  null,
                  'to ',
                  h(
                    'strong',
                    null,
                    t.next.percent === undefined ? t.next.stage : `${t.next.stage} ${t.next.percent}%`,
                  ),
                  ' ',
                  t.verdict.pass
                    ? h('span', { class: 'ok' }, 'gates pass')
                    : h('span', { class: 'bad' }, 'gates refuse'),
                ),
                gateList(t.verdict.results),
              ];
        const select = h(
          'select',
          { 'data-rollback-to': t.target, 'aria-label': `rollback ${t.target} to` },
          ['', 'shadow', 'capture'].map((v) =>
            h(
              'option',
              { value: v, selected: (ui.rollbackTo[t.target] ?? '') === v },
              v === '' ? 'plan default' : v,
            ),
          ),
        );
        return h(
          'tr',
          { 'data-target': t.target },
          h('td', null, h('strong', null, t.target), h('div', { class: 'muted' }, t.endpoints.join(', '))),
          h('td', { class: 'stage' }, stage, t.state.held ? h('div', { class: 'warn' }, 'held') : null),
          h('td', null, time(t.state.since)),
          h('td', null, next),
          h(
            'td',
            null,
            h(
              'div',
              { class: 'actions' },
              h('button', { type: 'button', 'data-action': 'advance', 'data-target': t.target }, 'Advance'),
              h(
                'button',
                { type: 'button', 'data-action': t.state.held ? 'resume' : 'hold', 'data-target': t.target },
                t.state.held ? 'Resume' : 'Hold',
              ),
              h('button', { type: 'button', 'data-action': 'rollback', 'data-target': t.target }, 'Rollback'),
              'to',
              select,
            ),
          ),
        );
      }),
    );
  }

  function renderTimeline(points, bucketSeconds) {
    return h(
      'div',
      { class: 'timeline', title: `match rate per ${Math.round(bucketSeconds)} s` },
      points.map((p) =>
        p.matchRate === null
          ? h('div', { class: 'bar empty', title: `${time(p.start)}: no decided comparison` })
          : h('div', {
              class: p.matchRate < 1 ? 'bar some-mismatch' : 'bar',
              style: { height: `${Math.max(4, p.matchRate * 100)}%` },
              title: `${time(p.start)}: ${p.matched} of ${p.decided} matched (${pct(p.matchRate)})`,
            }),
      ),
    );
  }

  function renderSample(s) {
    const shown = s.differences.length < s.diffCount ? ` (first ${s.differences.length} shown)` : '';
    return h(
      'div',
      { class: 'sample', 'data-sample': s.id },
      h(
        'div',
        { class: 'sample-head' },
        h('code', null, s.requestKey),
        ` · ${s.outcome} · ${time(s.recordedAt)} · ${s.diffCount} differing field${s.diffCount === 1 ? '' : 's'}${shown}`,
      ),
      table(
        ['Field', 'Legacy', 'Read model'],
        s.differences.map((d) =>
          h(
            'tr',
            { 'data-path': d.path },
            h('td', { class: 'path diff mono', title: d.kind }, d.path),
            h('td', { class: 'diff mono legacy' }, json(d.legacy)),
            h('td', { class: 'diff mono read-model' }, json(d.readModel)),
          ),
        ),
      ),
    );
  }

  function renderEndpoint(e, o) {
    return h(
      'div',
      { class: 'endpoint', 'data-endpoint': e.key },
      h(
        'h3',
        null,
        h('code', null, e.key),
        h('span', { class: `mode mode-${e.flag.mode}`, 'data-mode': e.flag.mode }, modeText(e.flag)),
        h('span', { class: 'muted' }, `${e.route} · flag from ${e.flagFrom}`),
      ),
      table(
        [...OUTCOMES, `match rate (last ${Math.round(o.windowSeconds / 60)} min)`, 'over time'],
        h(
          'tr',
          null,
          OUTCOMES.map((k) => h('td', { class: `count-${k}` }, String(e.byOutcome[k]))),
          h('td', { class: 'match-rate' }, pct(e.matchRate)),
          h('td', null, renderTimeline(e.timeline, o.bucketSeconds)),
        ),
      ),
      e.paths.length === 0
        ? null
        : [
            h('div', null, h('strong', null, 'Mismatches by field')),
            table(
              ['Field path', 'Comparisons', 'First seen', 'Last seen'],
              e.paths.map((p) =>
                h(
                  'tr',
                  { class: 'mismatch-path', 'data-path': p.path },
                  h('td', { class: 'diff mono' }, p.path),
                  h('td', null, String(p.count)),
                  h('td', null, time(p.firstSeen)),
                  h('td', null, time(p.lastSeen)),
                ),
              ),
            ),
          ],
      e.samples.length === 0
        ? null
        : [
            h('div', null, h('strong', null, 'Samples (legacy vs read model, sensitive values masked)')),
            e.samples.map(renderSample),
          ],
    );
  }

  function renderDomain(d, o) {
    return h(
      'div',
      { class: 'domain', 'data-domain': d.domain },
      h('h3', null, `Domain ${d.domain}`),
      d.endpoints.map((e) => renderEndpoint(e, o)),
    );
  }

  function renderAudit(entries) {
    if (entries.length === 0) return h('p', { class: 'muted' }, 'No change recorded yet.');
    return table(
      ['Time', 'Actor', 'Action', 'Target', 'Change', 'Reason'],
      entries.map((a) =>
        h(
          'tr',
          { 'data-audit': a.id, 'data-action': a.action },
          h('td', null, time(a.at)),
          h('td', null, a.actor),
          h('td', { class: 'mono' }, a.action),
          h('td', null, a.target ?? 'all'),
          h('td', null, a.summary, a.forced ? h('span', { class: 'warn' }, ' (forced)') : null),
          h('td', null, a.reason ?? ''),
        ),
      ),
    );
  }

  function showResult(target, action, r) {
    const box = $('action-result');
    if (r.ok) {
      const what =
        r.data.from === undefined ? `${target}: ${action} done` : `${target}: ${r.data.from} → ${r.data.to}`;
      box.replaceChildren(h('span', { class: 'ok' }, what));
      return;
    }
    box.replaceChildren(
      h(
        'div',
        { class: 'refused' },
        `${action} refused (${r.data?.error ?? r.status}): ${r.data?.message ?? ''}`,
      ),
      r.data?.hint ? h('div', { class: 'muted' }, `fix: ${r.data.hint}`) : null,
      r.data?.gates ? gateList(r.data.gates) : null,
    );
  }

  async function act(target, action) {
    if (ui.busy) return;
    ui.busy = true;
    const to = ui.rollbackTo[target];
    const body = action === 'advance' ? {} : action === 'rollback' ? (to ? { to } : {}) : undefined;
    try {
      showResult(target, action, await api('POST', `rollout/${encodeURIComponent(target)}/${action}`, body));
    } catch (err) {
      if (!(err instanceof Unauthorized)) setStatus(`${action} failed: ${err.message}`, 'bad');
    } finally {
      ui.busy = false;
    }
    await refresh();
  }

  document.addEventListener('DOMContentLoaded', () => {
    $('login').addEventListener('submit', (event) => {
      event.preventDefault();
      sessionStorage.setItem(TOKEN_KEY, $('token').value.trim());
      $('token').value = '';
      showBoard();
      refresh();
    });
    $('forget').addEventListener('click', () => {
      sessionStorage.removeItem(TOKEN_KEY);
      showLogin();
    });
    // Delegated: the rows are redrawn on every refresh.
    $('rollout').addEventListener('click', (event) => {
      const button = event.target.closest('button[data-action]');
      if (button) act(button.dataset.target, button.dataset.action);
    });
    $('rollout').addEventListener('change', (event) => {
      const select = event.target.closest('select[data-rollback-to]');
      if (select) ui.rollbackTo[select.dataset.rollbackTo] = select.value;
    });
    if (sessionStorage.getItem(TOKEN_KEY)) {
      showBoard();
      refresh();
    } else {
      showLogin();
    }
  });
})();
