// app.js — truthgpt's chat page: keeps the conversation, streams replies
// from POST /v1/chat/completions (fetch + server-sent events, with logprobs
// and the top 5 alternatives of each token), shades every assistant token by
// its probability and shows the alternatives on hover. Stop aborts the
// request (the server then cancels the generation). Plain JS, no libraries.
'use strict';

const $ = (id) => document.getElementById(id);
const els = {
  messages: $('messages'), empty: $('empty'), input: $('input'), send: $('send'), stop: $('stop'),
  composer: $('composer'), status: $('status'), model: $('model'), tip: $('tip'), newChat: $('new-chat'),
  temperature: $('temperature'), temperatureOut: $('temperature-out'), maxTokens: $('max-tokens'),
  system: $('system'), apiKey: $('api-key'),
};

let history = [];        // [{role, content}] sent with every request
let controller = null;   // AbortController of the reply being streamed
let modelName = 'truthgpt';

// Settings survive a reload (localStorage), the conversation does not.
for (const [key, el] of [['temperature', els.temperature], ['maxTokens', els.maxTokens], ['system', els.system],
                         ['apiKey', els.apiKey]]) {
  const v = localStorage.getItem('truthgpt.' + key);
  if (v !== null) el.value = v;
  el.addEventListener('input', () => localStorage.setItem('truthgpt.' + key, el.value));
}
const showTemperature = () => { els.temperatureOut.textContent = Number(els.temperature.value).toFixed(2); };
els.temperature.addEventListener('input', showTemperature);
showTemperature();

function headers() {
  const h = { 'Content-Type': 'application/json' };
  if (els.apiKey.value) h.Authorization = 'Bearer ' + els.apiKey.value;
  return h;
}

async function loadModel() {
  try {
    const r = await fetch('/v1/models', { headers: headers() });
    const j = await r.json();
    if (!r.ok) throw new Error(j.error ? j.error.message : r.statusText);
    modelName = j.data[0].id;
    els.model.textContent = modelName;
  } catch (e) {
    els.model.textContent = 'model unavailable: ' + e.message;
  }
}

function addMessage(role, text) {
  els.empty.hidden = true;
  const row = document.createElement('div');
  row.className = 'msg ' + role;
  const bubble = document.createElement('div');
  bubble.className = 'bubble';
  if (role === 'assistant') {
    const who = document.createElement('div');
    who.className = 'who';
    who.textContent = modelName;
    bubble.append(who);
  }
  const body = document.createElement('div');
  body.className = 'body';
  if (text) body.textContent = text;
  bubble.append(body);
  row.append(bubble);
  els.messages.append(row);
  scrollDown();
  return { row, bubble, body };
}

function scrollDown() { els.messages.scrollTop = els.messages.scrollHeight; }

// Probability p -> background: sure tokens stay clear, unsure ones glow.
function shade(p) {
  const a = Math.min(0.6, Math.max(0, (1 - p) * 0.6));
  return `rgba(var(--unsure), ${a.toFixed(3)})`;
}

const fmtPct = (lp) => {
  const p = Math.exp(lp) * 100;
  return p >= 10 ? p.toFixed(0) + '%' : p >= 0.1 ? p.toFixed(1) + '%' : '<0.1%';
};
// Token text for the hover card: whitespace made visible (a token is often
// just a space or a newline), other control characters escaped.
const showTok = (s) => (s === '' ? '∅' : JSON.stringify(s).slice(1, -1).replace(/\\n/g, '↵').replace(/ /g, '␣'));

function showTip(span) {
  const info = span._info;
  if (!info) return;
  const t = els.tip;
  t.replaceChildren();
  const head = document.createElement('div');
  head.className = 'head';
  head.append(Object.assign(document.createElement('span'), { textContent: '“' + showTok(info.token) + '”' }),
              Object.assign(document.createElement('span'), { textContent: fmtPct(info.logprob) }));
  t.append(head);
  const table = document.createElement('table');
  for (const alt of info.top_logprobs || []) {
    const tr = document.createElement('tr');
    if (alt.token === info.token) tr.className = 'chosen';
    const bar = document.createElement('div');
    bar.className = 'pbar';
    bar.style.width = Math.max(2, Math.exp(alt.logprob) * 100).toFixed(1) + '%';
    const tdb = document.createElement('td');
    tdb.className = 'b';
    tdb.append(bar);
    tr.append(Object.assign(document.createElement('td'), { className: 't', textContent: showTok(alt.token) }),
              Object.assign(document.createElement('td'), { className: 'p', textContent: fmtPct(alt.logprob) }), tdb);
    table.append(tr);
  }
  t.append(table);
  t.hidden = false;
  const r = span.getBoundingClientRect();
  const w = t.offsetWidth, h = t.offsetHeight;
  t.style.left = Math.max(8, Math.min(window.innerWidth - w - 8, r.left)) + 'px';
  t.style.top = (r.bottom + 8 + h < window.innerHeight ? r.bottom + 6 : r.top - h - 6) + 'px';
}
els.messages.addEventListener('mouseover', (e) => { if (e.target.classList.contains('tok')) showTip(e.target); });
els.messages.addEventListener('mouseout', (e) => { if (e.target.classList.contains('tok')) els.tip.hidden = true; });

// One assistant reply being built from stream chunks. Tokens arrive as
// bytes (a character may span tokens): a streaming TextDecoder turns each
// token's bytes into the characters it completes, and that text goes into
// the token's shaded span.
class Reply {
  constructor() {
    this.ui = addMessage('assistant', '');
    this.decoder = new TextDecoder('utf-8');
    this.content = '';
    this.cursor = document.createElement('span');
    this.cursor.className = 'cursor';
    this.ui.body.append(this.cursor);
    this.tokens = 0;
  }
  addDelta(delta, logprobs) {
    if (delta) this.content += delta;
    const entries = logprobs && logprobs.content;
    if (entries && entries.length) {
      for (const e of entries) {
        const text = this.decoder.decode(new Uint8Array(e.bytes || []), { stream: true });
        const span = document.createElement('span');
        span.className = 'tok';
        span.textContent = text;
        span.style.background = shade(Math.exp(e.logprob));
        span._info = e;
        this.ui.body.insertBefore(span, this.cursor);
        this.tokens++;
      }
    } else if (delta) {
      this.ui.body.insertBefore(document.createTextNode(delta), this.cursor);
    }
    scrollDown();
  }
  // The tokens' text can run past the reply's content where a stop
  // sequence matched (the server cuts it): trim the spans to the content.
  finish(reason, usage) {
    this.cursor.remove();
    let shown = '';
    for (const n of this.ui.body.childNodes) shown += n.textContent;
    if (shown !== this.content && shown.startsWith(this.content)) {
      let extra = shown.length - this.content.length;
      const nodes = [...this.ui.body.childNodes];
      for (let i = nodes.length - 1; i >= 0 && extra > 0; i--) {
        const len = nodes[i].textContent.length;
        if (len <= extra) { nodes[i].remove(); extra -= len; }
        else { nodes[i].textContent = nodes[i].textContent.slice(0, len - extra); extra = 0; }
      }
    }
    const meta = document.createElement('div');
    meta.className = 'meta';
    const why = { stop: 'finished', length: 'hit the token limit', cancelled: 'stopped' }[reason] || reason;
    meta.textContent = `${this.tokens} tokens · ${why}` + (usage ? ` · prompt ${usage.prompt_tokens} tokens` : '');
    this.ui.bubble.append(meta);
  }
}

function setBusy(busy) {
  els.send.hidden = busy;
  els.stop.hidden = !busy;
  els.input.disabled = false;
}

// Reads server-sent events from a fetch body: "data: {...}\n\n" records.
async function* sseEvents(body) {
  const reader = body.getReader();
  const dec = new TextDecoder();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const record = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const data = record.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trimStart()).join('\n');
      if (data) yield data;
    }
  }
}

async function send(text) {
  history.push({ role: 'user', content: text });
  addMessage('user', text);
  const messages = els.system.value.trim() ? [{ role: 'system', content: els.system.value.trim() }, ...history] : history;
  const reply = new Reply();
  controller = new AbortController();
  setBusy(true);
  els.status.textContent = 'generating…';
  const t0 = performance.now();
  let finish = 'stop', usage = null, error = null;
  try {
    const res = await fetch('/v1/chat/completions', {
      method: 'POST', headers: headers(), signal: controller.signal,
      body: JSON.stringify({
        model: modelName, messages, stream: true, stream_options: { include_usage: true },
        temperature: Number(els.temperature.value), max_tokens: Number(els.maxTokens.value) || 200,
        logprobs: true, top_logprobs: 5,
      }),
    });
    if (!res.ok) {
      let msg = res.statusText;
      try { msg = (await res.json()).error.message; } catch (_) { /* not JSON */ }
      throw new Error(`${res.status}: ${msg}`);
    }
    for await (const data of sseEvents(res.body)) {
      if (data === '[DONE]') break;
      const chunk = JSON.parse(data);
      if (chunk.error) throw new Error(chunk.error.message);
      if (chunk.usage) usage = chunk.usage;
      const c = chunk.choices && chunk.choices[0];
      if (!c) continue;
      reply.addDelta(c.delta && c.delta.content, c.logprobs);
      if (c.finish_reason) finish = c.finish_reason;
    }
  } catch (e) {
    // Stop can surface as another error than AbortError (a body stream cut
    // mid-read), so the signal decides.
    if (e.name === 'AbortError' || controller.signal.aborted) finish = 'cancelled';
    else {
      finish = 'error';
      error = e.message;
    }
  }
  reply.finish(finish, usage);
  // After finish(), which trims the body to the reply's content.
  if (error !== null) {
    reply.ui.row.classList.add('error');
    reply.ui.body.append(document.createTextNode((reply.content ? '\n' : '') + 'Error: ' + error));
  }
  if (finish !== 'error') history.push({ role: 'assistant', content: reply.content });
  else history.pop();
  const secs = (performance.now() - t0) / 1000;
  els.status.textContent = reply.tokens ? `${reply.tokens} tokens in ${secs.toFixed(1)} s (${(reply.tokens / secs).toFixed(1)} tokens/s)` : '';
  controller = null;
  setBusy(false);
  els.input.focus();
}

els.composer.addEventListener('submit', (e) => {
  e.preventDefault();
  const text = els.input.value.trim();
  if (!text || controller) return;
  els.input.value = '';
  autoGrow();
  send(text);
});
els.input.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); els.composer.requestSubmit(); }
});
function autoGrow() { els.input.style.height = 'auto'; els.input.style.height = els.input.scrollHeight + 'px'; }
els.input.addEventListener('input', autoGrow);
els.stop.addEventListener('click', () => { if (controller) controller.abort(); });
els.newChat.addEventListener('click', () => {
  if (controller) controller.abort();
  history = [];
  els.messages.replaceChildren(els.empty);
  els.empty.hidden = false;
  els.status.textContent = '';
  els.input.focus();
});
els.apiKey.addEventListener('change', loadModel);
loadModel();
