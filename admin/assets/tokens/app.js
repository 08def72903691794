// The Access Tokens page: the platform's dashboard flow on its public token methods
// (users.Authentication: Signin, Signout, GetTokens, GetTokenTemplates, GetTokenApiList,
// CreateToken, EditToken, RegenerateToken, DeleteTokens), called by POST with form bodies.
//
// Rules this file keeps:
// - The login session lives in the `session` variable only: never in a URL, a cookie or
//   storage; a reload signs out. It is sent as the `session` form field.
// - A token value is shown once, in the Token dialog, and forgotten when it closes; it is
//   never stored, logged or put in a URL.
// - Every string from the API reaches the page through textContent / DOM properties, never
//   as HTML.
// - Every failure (API errors, network failures, unexpected answers) is shown in the page.
'use strict';

(() => {
  // Relative to the page (/tokens/), so it works on the API listener and through Envoy.
  const API = new URL('../1.0/users/authentication/rest/', document.baseURI);
  const ACCEPTED = new Set(['accepted', 'already_current', 'superseded']);

  const $ = (id) => document.getElementById(id);
  const el = (tag, props, ...children) => {
    const node = document.createElement(tag);
    Object.assign(node, props || {});
    node.append(...children);
    return node;
  };

  // ---- state ----------------------------------------------------------------------------
  let session = null; // the login session: memory only
  let account = null;
  let tokens = [];
  let templates = null; // GetTokenTemplates, per session
  let catalogue = null; // GetTokenApiList (with private methods), per session
  let selected = new Set(); // token ids
  let anchor = null; // where a Shift selection starts
  let active = null; // the row with the keyboard focus (roving tabindex)
  let form = null; // the open form: { mode, token, initial }
  let pending = null; // the confirmation dialog's action
  let busy = false;

  // ---- calling the API ------------------------------------------------------------------
  class Failure extends Error {
    constructor(message, code) {
      super(message);
      this.code = code; // the API's result code; undefined for network/HTTP failures
    }
  }

  async function call(method, params) {
    const body = new URLSearchParams();
    for (const [name, value] of Object.entries(params || {})) {
      if (value !== undefined && value !== null) body.append(name, value);
    }
    if (session !== null && method !== 'Signin') body.set('session', session);
    let response;
    try {
      response = await fetch(new URL(method.toLowerCase(), API), {
        method: 'POST',
        body,
        credentials: 'omit',
        cache: 'no-store',
        redirect: 'error',
        referrerPolicy: 'no-referrer',
      });
    } catch (e) {
      throw new Failure(`Cannot reach the token service (${e.message}). Check the connection and try again.`);
    }
    const text = await response.text().catch(() => '');
    let answer;
    try {
      answer = JSON.parse(text);
    } catch (e) {
      const detail = text.trim().slice(0, 200);
      throw new Failure(`The token service answered HTTP ${response.status}${detail ? `: ${detail}` : ' with no usable answer'}. Try again later.`);
    }
    if (answer === null || typeof answer !== 'object' || typeof answer.result !== 'number') {
      throw new Failure(`The token service answered HTTP ${response.status} with an unexpected answer. Try again later.`);
    }
    if (answer.result !== 0) {
      const failure = new Failure(answer.error || `The token service refused the request (error ${answer.result}).`, answer.result);
      if (answer.result === 701 && method !== 'Signin' && method !== 'Signout') {
        sessionLost(failure.message);
      }
      throw failure;
    }
    return answer;
  }

  // ---- messages -------------------------------------------------------------------------
  function showBanner(message) {
    $('banner-text').textContent = message;
    $('banner').hidden = false;
  }
  function hideBanner() {
    $('banner').hidden = true;
    $('banner-text').textContent = '';
  }
  function setStatus(message, kind) {
    const status = $('status');
    status.textContent = message;
    status.className = `status${kind ? ` ${kind}` : ''}`;
  }
  function showError(node, message) {
    node.textContent = message;
    node.hidden = !message;
  }
  function setBusy(button, on) {
    if (on) button.setAttribute('aria-busy', 'true');
    else button.removeAttribute('aria-busy');
  }

  // What publishing did, from a change's `publish` object.
  function describePublish(publish) {
    if (!publish || typeof publish !== 'object') return 'saved.';
    const edges = Array.isArray(publish.edges) ? publish.edges : [];
    const version = publish.version == null ? '' : ` (version ${publish.version})`;
    switch (publish.state) {
      case 'published':
        return `saved and published to ${edges.length === 1 ? 'the edge' : `all ${edges.length} edges`}${version}.`;
      case 'not_accepted': {
        const failed = edges.filter((e) => !ACCEPTED.has(e.outcome));
        const why = failed.map((e) => `${e.edge}: ${(e.outcome || 'failed').replace(/_/g, ' ')}${e.error ? ` (${e.error})` : ''}`).join('; ');
        return `saved; ${failed.length} of ${edges.length} edges did not accept${version}${why ? ` — ${why}` : ''}${publish.error ? ` — ${publish.error}` : ''}. They get it when they next fetch from pat-admin.`;
      }
      case 'no_edges':
        return 'saved (no edges are configured).';
      case 'unsigned':
        return 'saved, but not signed: no signing key is active, so the edges do not have it yet.';
      case 'skipped':
        return 'saved (not published).';
      default:
        return 'saved.';
    }
  }
  const publishKind = (publish) => (publish && publish.state === 'published' ? 'ok' : 'warn');

  // ---- dates ----------------------------------------------------------------------------
  const pad = (n) => String(n).padStart(2, '0');
  // An API instant, `yyyy-MM-dd HH:mm:ss` in UTC, as a Date (null when absent or malformed).
  function instant(text) {
    const m = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})$/.exec(text || '');
    if (!m) return null;
    return new Date(Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]));
  }
  // `dd-mm-yyyy` as {d, m, y} when it is a real date.
  function parseDay(text) {
    const m = /^(\d{2})-(\d{2})-(\d{4})$/.exec(text);
    if (!m) return null;
    const [d, mo, y] = [+m[1], +m[2], +m[3]];
    const date = new Date(Date.UTC(y, mo - 1, d));
    if (date.getUTCFullYear() !== y || date.getUTCMonth() !== mo - 1 || date.getUTCDate() !== d) return null;
    return { d, m: mo, y };
  }
  const dayText = (date) => `${pad(date.getUTCDate())}-${pad(date.getUTCMonth() + 1)}-${date.getUTCFullYear()}`;
  // The last day a token is valid on: an expiry at midnight ends the day before.
  function lastDay(date) {
    const midnight = date.getUTCHours() === 0 && date.getUTCMinutes() === 0 && date.getUTCSeconds() === 0;
    return midnight ? new Date(date.getTime() - 1000) : date;
  }
  function expiresLabel(token) {
    const date = instant(token.expiresAt);
    if (!date) return token.expiresAt ? String(token.expiresAt) : 'never';
    const midnight = date.getUTCHours() === 0 && date.getUTCMinutes() === 0 && date.getUTCSeconds() === 0;
    if (midnight) return dayText(lastDay(date));
    return `${dayText(date)} ${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())} UTC`;
  }
  function isExpired(token) {
    const date = instant(token.expiresAt);
    return date !== null && date.getTime() <= Date.now();
  }
  const instantLabel = (date) => `${dayText(date)} ${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())} UTC`;
  function lastUsedLabel(token) {
    const date = instant(token.lastUsed);
    return date ? instantLabel(date) : 'never';
  }
  // Until when a regenerated token's previous value still works (null when it does not).
  function oldValueUntil(token) {
    const date = instant(token.oldKeyExpiresAt);
    return date && date.getTime() > Date.now() ? date : null;
  }
  function oldValueLabel(token) {
    const date = oldValueUntil(token);
    return date ? `old value works until ${instantLabel(date)}` : '';
  }
  const allowedIps = (token) => (Array.isArray(token.allowedIps) ? token.allowedIps.map(String) : []);
  function ipsLabel(token) {
    const list = allowedIps(token);
    if (!list.length) return 'any';
    if (list.length <= 2) return list.join(', ');
    return `${list.slice(0, 2).join(', ')} +${list.length - 2} more`;
  }
  // A light check of one Allowed IPs entry (the service checks it fully, host bits too).
  function looksLikeNetwork(text) {
    const parts = text.split('/');
    if (parts.length > 2) return false;
    const [addr, prefix] = parts;
    if (prefix !== undefined && !/^\d{1,3}$/.test(prefix)) return false;
    const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(addr);
    if (v4) return v4.slice(1).every((o) => Number(o) <= 255) && (prefix === undefined || Number(prefix) <= 32);
    return addr.includes(':') && /^[0-9A-Fa-f:.]+$/.test(addr) && (prefix === undefined || Number(prefix) <= 128);
  }
  const networksOf = (text) => text.split(/[\s,;]+/).filter(Boolean);
  // Environments: names as the API returns them (null: any environment).
  const envNames = (token) => (Array.isArray(token.envNames) ? token.envNames.map(String) : []);
  function envsLabel(token) {
    const list = envNames(token);
    if (!list.length) return 'any';
    if (list.length <= 2) return list.join(', ');
    return `${list.slice(0, 2).join(', ')} +${list.length - 2} more`;
  }
  // An environment's name as the platform allows it: a DNS label (the service checks it too).
  const looksLikeEnvName = (text) => /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(text);
  const envsOf = (text) => [...new Set(text.split(/[\s,;]+/).filter(Boolean).map((n) => n.toLowerCase()))];
  // The token's own rate limit ('' when none), and the label of the one edges enforce.
  const ownRate = (token) => (typeof token.rateLimit === 'string' ? token.rateLimit : '');
  function rateLabel(token) {
    if (ownRate(token)) return ownRate(token);
    if (typeof token.effectiveRateLimit === 'string') return `${token.effectiveRateLimit} (default)`;
    return 'none';
  }
  const looksLikeRate = (text) => /^\d+\s*\/\s*(s|sec|second|m|min|minute)$/i.test(text);
  function apiLabel(token) {
    if (token.tokenTemplate && token.tokenTemplate.name) return String(token.tokenTemplate.name);
    const n = Array.isArray(token.apiListItems) ? token.apiListItems.length : 0;
    return `Custom, ${n} ${n === 1 ? 'method' : 'methods'}`;
  }

  // ---- signing in and out ---------------------------------------------------------------
  function showSignin(message) {
    $('tokens-view').hidden = true;
    $('account').hidden = true;
    $('signin-view').hidden = false;
    showError($('signin-error'), message || '');
    const login = $('signin-login');
    (login.value ? $('signin-password') : login).focus();
  }

  function forget() {
    session = null;
    account = null;
    tokens = [];
    templates = null;
    catalogue = null;
    selected = new Set();
    anchor = null;
    active = null;
    form = null;
    pending = null;
    busy = false;
    for (const id of ['confirm-dialog', 'form-dialog', 'value-dialog']) {
      const dialog = $(id);
      if (dialog.open) dialog.close();
    }
    forgetValue();
    $('token-rows').replaceChildren();
    setStatus('');
  }

  function sessionLost(message) {
    forget();
    hideBanner();
    showSignin(`${message} Sign in again.`);
  }

  $('signin-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    if (busy) return;
    const login = $('signin-login');
    const password = $('signin-password');
    const error = $('signin-error');
    login.removeAttribute('aria-invalid');
    password.removeAttribute('aria-invalid');
    if (!login.value.trim()) {
      login.setAttribute('aria-invalid', 'true');
      showError(error, 'Enter your login.');
      login.focus();
      return;
    }
    if (!password.value) {
      password.setAttribute('aria-invalid', 'true');
      showError(error, 'Enter your password.');
      password.focus();
      return;
    }
    showError(error, '');
    const button = $('signin-button');
    busy = true;
    setBusy(button, true);
    button.disabled = true;
    try {
      const answer = await call('Signin', { login: login.value.trim(), password: password.value });
      session = String(answer.session);
      account = String(answer.login || login.value.trim());
      password.value = '';
      hideBanner();
      $('whoami').textContent = `Signed in as ${account}`;
      $('signin-view').hidden = true;
      $('account').hidden = false;
      $('tokens-view').hidden = false;
      setStatus('');
      busy = false;
      await refresh({ focusList: true });
    } catch (e) {
      password.value = '';
      showError(error, e.message);
      password.focus();
    } finally {
      busy = false;
      setBusy(button, false);
      button.disabled = false;
    }
  });

  $('signout').addEventListener('click', async () => {
    const button = $('signout');
    setBusy(button, true);
    let note = 'You are signed out.';
    try {
      if (session !== null) await call('Signout', {});
    } catch (e) {
      // The session is forgotten here whatever the service said.
      note = `Signed out here (the service said: ${e.message}).`;
    } finally {
      setBusy(button, false);
    }
    forget();
    hideBanner();
    showSignin('');
    $('signin-error').hidden = true;
    setStatus('');
    $('signin-password').focus();
    const hint = $('signin-view').querySelector('.hint');
    hint.textContent = note;
  });

  $('banner-close').addEventListener('click', hideBanner);

  // ---- the list -------------------------------------------------------------------------
  async function refresh(options) {
    const button = $('tool-refresh');
    setBusy(button, true);
    try {
      const answer = await call('GetTokens', {});
      tokens = Array.isArray(answer.apiTokens) ? answer.apiTokens : [];
      tokens.sort((a, b) => a.id - b.id);
      const ids = new Set(tokens.map((t) => t.id));
      selected = new Set([...selected].filter((id) => ids.has(id)));
      if (!ids.has(active)) active = tokens.length ? tokens[0].id : null;
      if (!ids.has(anchor)) anchor = null;
      renderList();
      if (options && options.status) setStatus(options.status, options.kind);
      if (options && options.focusList) focusRow(active);
      return true;
    } catch (e) {
      if (session !== null) showBanner(`Could not load your tokens: ${e.message}`);
      return false;
    } finally {
      setBusy(button, false);
    }
  }

  function renderList() {
    const rows = tokens.map((t) => {
      const cell = (className, ...content) => el('td', { className }, ...content);
      // A disabled account's tokens are on no edge until it is enabled again.
      const status = t.suspended === true ? 'suspended' : isExpired(t) ? 'expired' : 'active';
      const old = oldValueLabel(t);
      const state = [el('span', { className: `badge ${status}` }, status)];
      if (old) state.push(' ', el('span', { className: 'grace' }, old));
      const ips = cell('ips', ipsLabel(t));
      if (allowedIps(t).length) ips.title = `Accepted only from ${allowedIps(t).join(', ')}`;
      const row = el('tr', {},
        cell('id', String(t.id)),
        cell('description', String(t.description ?? '')),
        cell('api', apiLabel(t)),
        ips,
        cell('expires', expiresLabel(t)),
        cell('last-used', lastUsedLabel(t)),
        cell('state', ...state),
        cell('envs', envsLabel(t)),
        cell('rate', rateLabel(t)));
      if (envNames(t).length) row.cells[7].title = `Acts only on ${envNames(t).join(', ')}`;
      for (const [i, label] of ['ID', 'Description', 'API', 'Allowed IPs', 'Expires', 'Last used', 'Status', 'Environments', 'Rate limit'].entries()) {
        row.cells[i].dataset.label = label;
        row.cells[i].setAttribute('role', 'gridcell');
      }
      row.dataset.id = String(t.id);
      row.setAttribute('aria-selected', selected.has(t.id) ? 'true' : 'false');
      row.tabIndex = t.id === active ? 0 : -1;
      return row;
    });
    $('token-rows').replaceChildren(...rows);
    $('empty').hidden = tokens.length > 0;
    updateTools();
  }

  function rowOf(id) {
    return $('token-rows').querySelector(`tr[data-id="${Number(id)}"]`);
  }
  function focusRow(id) {
    const row = id === null ? null : rowOf(id);
    if (row) row.focus();
  }
  function syncSelection() {
    for (const row of $('token-rows').rows) {
      const id = Number(row.dataset.id);
      row.setAttribute('aria-selected', selected.has(id) ? 'true' : 'false');
      row.tabIndex = id === active ? 0 : -1;
    }
    updateTools();
  }
  function updateTools() {
    $('tool-edit').disabled = selected.size !== 1;
    $('tool-copy').disabled = selected.size !== 1;
    $('tool-remove').disabled = selected.size === 0;
  }
  const indexOf = (id) => tokens.findIndex((t) => t.id === id);
  function selectRange(from, to, add) {
    const [a, b] = [indexOf(from), indexOf(to)].sort((x, y) => x - y);
    if (a < 0) return;
    if (!add) selected = new Set();
    for (let i = a; i <= b; i++) selected.add(tokens[i].id);
  }
  const extends_ = (event) => event.ctrlKey || event.metaKey;
  // A click or Space on row `id`: Shift selects the range from the anchor, Ctrl/Cmd toggles
  // the row, anything else selects it alone.
  function choose(id, event) {
    if (event.shiftKey && anchor !== null) {
      selectRange(anchor, id, extends_(event));
    } else if (extends_(event)) {
      if (selected.has(id)) selected.delete(id);
      else selected.add(id);
      anchor = id;
    } else {
      selected = new Set([id]);
      anchor = id;
    }
  }

  const tbody = $('token-rows');
  tbody.addEventListener('mousedown', (event) => {
    // Shift-click would select text; the row is focused by the click handler.
    if (event.shiftKey || extends_(event)) event.preventDefault();
  });
  tbody.addEventListener('click', (event) => {
    const row = event.target.closest('tr');
    if (!row) return;
    const id = Number(row.dataset.id);
    choose(id, event);
    active = id;
    syncSelection();
    row.focus();
  });
  tbody.addEventListener('dblclick', (event) => {
    const row = event.target.closest('tr');
    if (!row) return;
    selected = new Set([Number(row.dataset.id)]);
    syncSelection();
    openForm('edit');
  });
  tbody.addEventListener('keydown', (event) => {
    if (!tokens.length) return;
    const current = Math.max(0, indexOf(active));
    let next = null;
    switch (event.key) {
      case 'ArrowDown': next = Math.min(tokens.length - 1, current + 1); break;
      case 'ArrowUp': next = Math.max(0, current - 1); break;
      case 'Home': next = 0; break;
      case 'End': next = tokens.length - 1; break;
      case ' ':
      case 'Spacebar': {
        event.preventDefault();
        choose(tokens[current].id, event);
        syncSelection();
        return;
      }
      case 'Enter':
        event.preventDefault();
        if (!selected.has(tokens[current].id) || selected.size !== 1) {
          selected = new Set([tokens[current].id]);
          anchor = tokens[current].id;
          syncSelection();
        }
        openForm('edit');
        return;
      case 'Delete':
        event.preventDefault();
        if (!selected.size) {
          selected = new Set([tokens[current].id]);
          syncSelection();
        }
        removeSelected();
        return;
      case 'a':
      case 'A':
        if (extends_(event)) {
          event.preventDefault();
          selected = new Set(tokens.map((t) => t.id));
          syncSelection();
        }
        return;
      default:
        return;
    }
    event.preventDefault();
    const id = tokens[next].id;
    if (event.shiftKey) {
      if (anchor === null) anchor = tokens[current].id;
      selectRange(anchor, id, extends_(event));
    } else if (!extends_(event)) {
      selected = new Set([id]);
      anchor = id;
    }
    active = id;
    syncSelection();
    focusRow(id);
  });

  // The toolbar: arrow keys move between its buttons too.
  $('tools').addEventListener('keydown', (event) => {
    if (event.key !== 'ArrowRight' && event.key !== 'ArrowLeft') return;
    const buttons = [...$('tools').querySelectorAll('button:not(:disabled)')];
    const at = buttons.indexOf(document.activeElement);
    if (at < 0) return;
    event.preventDefault();
    const step = event.key === 'ArrowRight' ? 1 : -1;
    buttons[(at + step + buttons.length) % buttons.length].focus();
  });

  function selectedToken() {
    if (selected.size !== 1) return null;
    const [id] = selected;
    return tokens.find((t) => t.id === id) || null;
  }

  $('tool-generate').addEventListener('click', () => openForm('generate'));
  $('tool-edit').addEventListener('click', () => openForm('edit'));
  $('tool-copy').addEventListener('click', () => openForm('copy'));
  $('tool-remove').addEventListener('click', () => removeSelected());
  $('tool-refresh').addEventListener('click', async () => {
    hideBanner();
    if (await refresh()) setStatus(`The list is up to date (${tokens.length} ${tokens.length === 1 ? 'token' : 'tokens'}).`);
  });

  // ---- the form: Generate, Edit, Copy ---------------------------------------------------
  async function loadChoices(button) {
    if (templates && catalogue) return true;
    setBusy(button, true);
    try {
      const [t, c] = await Promise.all([call('GetTokenTemplates', {}), call('GetTokenApiList', { showPrivate: 'true' })]);
      templates = Array.isArray(t.templates) ? t.templates : [];
      catalogue = Array.isArray(c.tokenPermissions) ? c.tokenPermissions : [];
      catalogue.sort((a, b) => String(a.method).localeCompare(String(b.method)));
      return true;
    } catch (e) {
      if (session !== null) showBanner(`Could not load the API choices: ${e.message}`);
      return false;
    } finally {
      setBusy(button, false);
    }
  }

  const methodKey = (name) => String(name).toLowerCase().replace(/^env\./, 'environment.');

  async function openForm(mode) {
    const button = $(`tool-${mode}`);
    const token = mode === 'generate' ? null : selectedToken();
    if (mode !== 'generate' && !token) {
      setStatus('Select one token first.', 'warn');
      return;
    }
    hideBanner();
    if (!(await loadChoices(button))) return;
    const template = token && token.tokenTemplate ? String(token.tokenTemplate.id) : null;
    const methods = token && !template ? (token.apiListItems || []).map((m) => methodKey(m.method)) : [];
    const initial = {
      description: token ? String(token.description ?? '') : '',
      expires: token && token.expiresAt ? dayText(lastDay(instant(token.expiresAt) || new Date())) : '',
      api: token ? template || 'custom' : (templates[0] ? String(templates[0].id) : 'custom'),
      methods: new Set(methods),
      ips: token ? allowedIps(token) : [],
      envs: token ? envNames(token) : [],
      rate: token ? ownRate(token) : '',
    };
    form = { mode, token, initial };
    $('form-title').textContent = {
      generate: 'Generate a token',
      edit: `Edit token ${token ? token.id : ''}`,
      copy: `Copy token ${token ? token.id : ''}: a new token with the same settings`,
    }[mode];
    $('f-description').value = initial.description;
    $('f-expires').value = initial.expires;
    $('f-allowed-ips').value = initial.ips.join(', ');
    $('f-envs').value = initial.envs.join(', ');
    $('f-rate-limit').value = initial.rate;
    $('f-grace').value = '0';
    const until = token && mode === 'edit' ? oldValueUntil(token) : null;
    $('f-old-value').textContent = until ? `Its previous value still works until ${instantLabel(until)}; regenerating again ends that at once.` : '';
    $('f-old-value').hidden = !until;
    syncPicker();
    renderChoices(initial.api);
    renderMethods(initial.methods);
    $('f-search').value = '';
    $('f-only-checked').checked = false;
    filterMethods();
    showApi();
    for (const id of ['f-description', 'f-expires', 'f-allowed-ips', 'f-envs', 'f-rate-limit']) $(id).removeAttribute('aria-invalid');
    showError($('form-error'), '');
    $('form-regenerate-row').hidden = mode !== 'edit';
    $('form-dialog').showModal();
    $('f-description').focus();
  }

  function renderChoices(chosen) {
    const choices = [...templates.map((t) => ({ id: String(t.id), name: String(t.name), count: (t.apiListItems || []).length })),
      { id: 'custom', name: 'Custom', count: null }];
    $('f-api-choices').replaceChildren(...choices.map((choice) => {
      const input = el('input', { type: 'radio', name: 'api', value: choice.id, id: `f-api-${choice.id}`, checked: choice.id === chosen });
      input.addEventListener('change', showApi);
      return el('label', { htmlFor: input.id }, input, choice.name);
    }));
  }

  function chosenApi() {
    const checked = $('f-api-choices').querySelector('input[name=api]:checked');
    return checked ? checked.value : null;
  }

  function showApi() {
    const api = chosenApi();
    const custom = api === 'custom';
    $('f-custom').hidden = !custom;
    const template = templates.find((t) => String(t.id) === api);
    $('f-template-info').textContent = template
      ? `${template.name}: ${(template.apiListItems || []).map((m) => m.method).join(', ')}`
      : custom ? 'Choose the methods the token may call.' : '';
  }

  function renderMethods(checked) {
    const items = [];
    catalogue.forEach((m, i) => {
      const key = methodKey(m.method);
      if (!m.isPublic && !checked.has(key)) return; // private methods only where a token has them
      const box = el('input', { type: 'checkbox', id: `f-m-${i}`, value: String(m.method), checked: checked.has(key) });
      box.dataset.key = key;
      box.addEventListener('change', countMethods);
      const label = el('label', { htmlFor: box.id, title: String(m.method) }, String(m.method));
      const children = [box, label];
      if (!m.isPublic) children.push(el('span', { className: 'private' }, 'private'));
      if (m.docs) {
        children.push(el('a', {
          className: 'docs',
          href: String(m.docs),
          target: '_blank',
          rel: 'noopener noreferrer',
          title: `API documentation: ${m.method} (${m.docs})`,
          ariaLabel: `API documentation of ${m.method}`,
        }, 'docs'));
      }
      const item = el('li', {}, ...children);
      item.dataset.search = `${key} ${String(m.method).toLowerCase()}`;
      items.push(item);
    });
    $('f-methods').replaceChildren(...items);
  }

  function checkedMethods() {
    return [...$('f-methods').querySelectorAll('input[type=checkbox]:checked')].map((b) => b.value);
  }

  function filterMethods() {
    const words = $('f-search').value.toLowerCase().split(/\s+/).filter(Boolean);
    const only = $('f-only-checked').checked;
    for (const item of $('f-methods').children) {
      const box = item.querySelector('input');
      const match = words.every((w) => item.dataset.search.includes(w));
      item.hidden = !match || (only && !box.checked);
    }
    countMethods();
  }

  function countMethods() {
    const all = $('f-methods').children.length;
    const shown = [...$('f-methods').children].filter((i) => !i.hidden).length;
    const n = checkedMethods().length;
    $('f-count').textContent = `${n} checked; showing ${shown} of ${all} methods.`;
  }

  $('f-search').addEventListener('input', filterMethods);
  $('f-only-checked').addEventListener('change', filterMethods);

  function syncPicker() {
    const day = parseDay($('f-expires').value.trim());
    $('f-expires-picker').value = day ? `${day.y}-${pad(day.m)}-${pad(day.d)}` : '';
  }
  $('f-expires').addEventListener('input', syncPicker);
  $('f-expires-picker').addEventListener('input', () => {
    const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec($('f-expires-picker').value);
    $('f-expires').value = m ? `${m[3]}-${m[2]}-${m[1]}` : '';
    $('f-expires').removeAttribute('aria-invalid');
  });

  $('form-cancel').addEventListener('click', () => $('form-dialog').close());
  $('form-dialog').addEventListener('close', () => {
    if (!$('confirm-dialog').open) form = null;
  });

  function invalid(id, message) {
    const field = $(id);
    field.setAttribute('aria-invalid', 'true');
    showError($('form-error'), message);
    field.focus();
    return null;
  }

  // The parameters of the form's change, checked; null (with the error shown) when invalid.
  function formParams() {
    for (const id of ['f-description', 'f-expires', 'f-allowed-ips', 'f-envs', 'f-rate-limit']) $(id).removeAttribute('aria-invalid');
    const description = $('f-description').value.trim();
    if (!description) return invalid('f-description', 'Enter a description.');
    const expires = $('f-expires').value.trim();
    if (expires && !parseDay(expires)) return invalid('f-expires', 'Expires At: write the date as dd-mm-yyyy (for example 31-12-2026), or leave it empty.');
    const ips = networksOf($('f-allowed-ips').value);
    const bad = ips.find((ip) => !looksLikeNetwork(ip));
    if (bad !== undefined) return invalid('f-allowed-ips', `Allowed IPs: "${bad}" is not an IP network. Write networks such as 203.0.113.0/24 or 2001:db8::/32 (or single addresses), comma-separated, or leave it empty for any address.`);
    if (ips.length > 32) return invalid('f-allowed-ips', `Allowed IPs: ${ips.length} networks, more than the 32 a token may have. Use wider networks.`);
    const envs = envsOf($('f-envs').value);
    const badEnv = envs.find((name) => !looksLikeEnvName(name));
    if (badEnv !== undefined) return invalid('f-envs', `Environments: "${badEnv}" is not an environment name. Names hold letters, digits and hyphens (not first or last), at most 63 characters; separate them with commas, or leave the field empty for any environment.`);
    if (envs.length > 32) return invalid('f-envs', `Environments: ${envs.length} names, more than the 32 a token may have.`);
    const rate = $('f-rate-limit').value.trim();
    if (rate && !looksLikeRate(rate)) return invalid('f-rate-limit', `Rate limit: "${rate}" is not a rate limit. Write it as N/s or N/min (for example 10/s or 600/min), or leave it empty.`);
    const api = chosenApi();
    if (!api) return invalid('f-api-custom', 'Choose the API the token may call.');
    const methods = checkedMethods();
    if (api === 'custom' && !methods.length) {
      showError($('form-error'), 'Custom: check at least one method.');
      $('f-search').focus();
      return null;
    }
    const scope = api === 'custom' ? { apiList: methods.join(',') } : { tokenTemplate: templates.find((t) => String(t.id) === api).name };
    if (form.mode !== 'edit') {
      return { description, ...(expires ? { expiresAt: expires } : {}), ...(ips.length ? { allowedIps: ips.join(',') } : {}),
        ...(envs.length ? { envNames: envs.join(',') } : {}), ...(rate ? { rateLimit: rate } : {}), ...scope };
    }
    // Edit: only what changed (an unchanged expiry keeps its exact instant).
    const initial = form.initial;
    const params = { id: form.token.id };
    if (description !== initial.description) params.description = description;
    if (expires !== initial.expires) params.expiresAt = expires; // empty: no expiry
    const sameMethods = methods.length === initial.methods.size && methods.every((m) => initial.methods.has(methodKey(m)));
    if (api !== initial.api || (api === 'custom' && !sameMethods)) Object.assign(params, scope);
    const sameIps = ips.length === initial.ips.length && [...ips].sort().every((ip, i) => ip === [...initial.ips].sort()[i]);
    if (!sameIps) params.allowedIps = ips.join(','); // empty: any address again
    const sameEnvs = envs.length === initial.envs.length && [...envs].sort().every((n, i) => n === [...initial.envs].sort()[i]);
    if (!sameEnvs) params.envNames = envs.join(','); // empty: any environment again
    if (rate.replace(/\s+/g, '') !== initial.rate) params.rateLimit = rate; // empty: none of its own
    return params;
  }

  $('token-form').addEventListener('submit', (event) => {
    event.preventDefault();
    if (!form) return;
    showError($('form-error'), '');
    const params = formParams();
    if (!params) return;
    const { mode, token } = form;
    if (mode === 'edit') {
      if (Object.keys(params).length === 1) {
        showError($('form-error'), 'Nothing has changed: change a field, or Cancel.');
        return;
      }
      confirmChange(`Save the changes to token ${token.id}?`, 'Saving and publishing to the edges…',
        (password) => call('EditToken', { ...params, password }),
        (answer) => {
          $('form-dialog').close();
          form = null;
          refresh({ status: `Token ${token.id} ${answer.changed === false ? 'was already like that; nothing changed' : describePublish(answer.publish)}`, kind: publishKind(answer.publish) });
        });
      return;
    }
    confirmChange(mode === 'copy' ? `Generate a copy of token ${token.id}?` : 'Generate the token?', 'Generating and publishing to the edges…',
      (password) => call('CreateToken', { ...params, password }),
      (answer) => {
        $('form-dialog').close();
        form = null;
        newValue(answer, `Token ${answer.token && answer.token.id} generated; ${describePublish(answer.publish)}`);
      });
  });

  $('form-regenerate').addEventListener('click', () => {
    if (!form || form.mode !== 'edit') return;
    const { token } = form;
    const choice = $('f-grace');
    const grace = Number(choice.value) || 0;
    const period = choice.selectedOptions.length ? choice.selectedOptions[0].textContent : '';
    const question = grace
      ? `Regenerate token ${token.id}? It gets a new value; the current one keeps working for ${period}.`
      : `Regenerate token ${token.id}? It gets a new value and the current one stops working.`;
    confirmChange(question, 'Regenerating and publishing to the edges…',
      (password) => call('RegenerateToken', { id: token.id, password, ...(grace ? { grace: String(grace) } : {}) }),
      (answer) => {
        $('form-dialog').close();
        form = null;
        const old = answer.token ? oldValueLabel(answer.token) : '';
        const what = old ? `the ${old}` : 'the old value no longer works';
        newValue(answer, `Token ${token.id} regenerated: ${what}; ${describePublish(answer.publish)}`);
      });
  });

  function removeSelected() {
    const ids = [...selected].sort((a, b) => a - b);
    if (!ids.length) {
      setStatus('Select the tokens to remove first.', 'warn');
      return;
    }
    const what = ids.length === 1 ? `token ${ids[0]}` : `${ids.length} tokens (${ids.join(', ')})`;
    confirmChange(`Remove ${what}? Clients using ${ids.length === 1 ? 'it' : 'them'} stop working.`, 'Removing and publishing to the edges…',
      (password) => call('DeleteTokens', { ids: ids.join(','), password }),
      (answer) => {
        const removed = Array.isArray(answer.ids) ? answer.ids : ids;
        selected = new Set();
        anchor = null;
        refresh({ status: `Removed ${removed.length === 1 ? `token ${removed[0]}` : `tokens ${removed.join(', ')}`}; ${describePublish(answer.publish)}`, kind: publishKind(answer.publish), focusList: true });
      });
  }

  // ---- the password confirmation --------------------------------------------------------
  function confirmChange(text, progress, action, done) {
    pending = { action, done, progress };
    $('confirm-text').textContent = text;
    $('confirm-password').value = '';
    $('confirm-password').removeAttribute('aria-invalid');
    showError($('confirm-error'), '');
    $('confirm-progress').hidden = true;
    $('confirm-dialog').showModal();
    $('confirm-password').focus();
  }

  function setConfirmBusy(on, text) {
    busy = on;
    const dialog = $('confirm-dialog');
    dialog.setAttribute('aria-busy', on ? 'true' : 'false');
    for (const id of ['confirm-button', 'confirm-cancel', 'confirm-password']) $(id).disabled = on;
    setBusy($('confirm-button'), on);
    $('confirm-progress').hidden = !on;
    $('confirm-progress-text').textContent = on ? text : '';
  }

  $('confirm-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    if (!pending || busy) return;
    const field = $('confirm-password');
    const password = field.value;
    if (!password) {
      field.setAttribute('aria-invalid', 'true');
      showError($('confirm-error'), 'Enter your password to confirm.');
      field.focus();
      return;
    }
    showError($('confirm-error'), '');
    const { action, done, progress } = pending;
    const started = Date.now();
    setConfirmBusy(true, progress);
    const ticker = setInterval(() => {
      $('confirm-progress-text').textContent = `${progress} ${Math.round((Date.now() - started) / 1000)} s`;
    }, 1000);
    let answer = null;
    let failure = null;
    try {
      answer = await action(password);
    } catch (e) {
      failure = e;
    } finally {
      clearInterval(ticker);
      field.value = '';
      setConfirmBusy(false, '');
    }
    if (session === null) return; // the session ended: sessionLost showed why
    if (failure) {
      if (failure.code === 710) {
        // A wrong password: nothing changed; the dialog stays open with the API's error.
        field.setAttribute('aria-invalid', 'true');
        showError($('confirm-error'), failure.message);
        field.focus();
        return;
      }
      if (failure.code === 714) {
        // Too many attempts: nothing was checked; the dialog stays open to try again later.
        showError($('confirm-error'), failure.message);
        field.focus();
        return;
      }
      pending = null;
      $('confirm-dialog').close();
      if ($('form-dialog').open) showError($('form-error'), failure.message);
      else showBanner(failure.message);
      return;
    }
    pending = null;
    $('confirm-dialog').close();
    done(answer);
  });

  $('confirm-cancel').addEventListener('click', () => $('confirm-dialog').close());
  $('confirm-dialog').addEventListener('cancel', (event) => {
    // A change in flight cannot be called back: wait for its answer (and any new value).
    if (busy) event.preventDefault();
  });
  $('confirm-dialog').addEventListener('close', () => {
    $('confirm-password').value = '';
    if (!busy) pending = null;
  });

  // ---- a new value, shown once ----------------------------------------------------------
  let valueId = null;
  function newValue(answer, status) {
    const token = answer.token || {};
    setStatus(status, publishKind(answer.publish));
    if (typeof token.key !== 'string' || !token.key) {
      showBanner('The token was saved, but the service sent no value. Regenerate it to get one.');
      refresh({ status, kind: publishKind(answer.publish) });
      return;
    }
    valueId = token.id;
    const field = $('value-token');
    field.value = token.key;
    delete token.key;
    $('value-status').textContent = '';
    $('value-dialog').showModal();
    field.focus();
    field.select();
    refresh({ status, kind: publishKind(answer.publish) });
  }
  function forgetValue() {
    $('value-token').value = '';
    $('value-status').textContent = '';
    valueId = null;
  }

  $('value-copy').addEventListener('click', async () => {
    const field = $('value-token');
    try {
      if (!navigator.clipboard || !window.isSecureContext) throw new Error('no clipboard');
      await navigator.clipboard.writeText(field.value);
      $('value-status').textContent = 'Copied to the clipboard.';
    } catch (e) {
      field.focus();
      field.select();
      let copied = false;
      try {
        copied = document.execCommand('copy');
      } catch (ignored) {
        copied = false;
      }
      $('value-status').textContent = copied ? 'Copied to the clipboard.' : 'The value is selected: press Ctrl+C (⌘C) to copy it.';
    }
  });
  $('value-download').addEventListener('click', () => {
    const value = $('value-token').value;
    if (!value) return;
    const url = URL.createObjectURL(new Blob([`${value}\n`], { type: 'text/plain' }));
    const link = el('a', { href: url, download: `pat-token-${valueId}.txt` });
    document.body.append(link);
    link.click();
    link.remove();
    URL.revokeObjectURL(url);
    $('value-status').textContent = `Downloaded as pat-token-${valueId}.txt.`;
  });
  $('value-close').addEventListener('click', () => {
    forgetValue();
    $('value-dialog').close();
  });
  $('value-dialog').addEventListener('close', () => {
    forgetValue();
    focusRow(active);
  });

  // ---- start ----------------------------------------------------------------------------
  window.addEventListener('unhandledrejection', (event) => {
    showBanner(`Something went wrong: ${event.reason && event.reason.message ? event.reason.message : event.reason}`);
  });
  document.addEventListener('securitypolicyviolation', (event) => {
    showBanner(`The browser blocked something this page did not expect (${event.violatedDirective}).`);
  });
  window.addEventListener('error', (event) => {
    showBanner(`Something went wrong: ${event.message}`);
  });
  updateTools();
  showSignin('');
})();
