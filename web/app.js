// app.js — truthgpt's chat page: keeps the conversation, streams replies
// from POST /v1/chat/completions (fetch + server-sent events, with logprobs
// and the top 5 alternatives of each token), shades every assistant token by
// its probability and shows the alternatives on hover. Stop aborts the
// request (the server then cancels the generation). When the server has a
// search index, answers can be grounded in the posts: the sources are listed
// under the answer, and each sentence that cites one is marked (docs/search.md).
// Plain JS, no libraries.
'use strict';

const $ = (id) => document.getElementById(id);
const els = {
  messages: $('messages'), empty: $('empty'), input: $('input'), send: $('send'), stop: $('stop'),
  composer: $('composer'), status: $('status'), model: $('model'), tip: $('tip'), newChat: $('new-chat'),
  temperature: $('temperature'), temperatureOut: $('temperature-out'), maxTokens: $('max-tokens'),
  system: $('system'), apiKey: $('api-key'),
  grounding: $('grounding'), topK: $('top-k'), groundingBox: $('grounding-box'), groundingLegend: $('grounding-legend'),
};

let history = [];        // [{role, content}] sent with every request
let controller = null;   // AbortController of the reply being streamed
let modelName = 'truthgpt';
let hasIndex = false;    // the server was started with --index (GET /v1/search answers)

// Settings survive a reload (localStorage), the conversation does not.
for (const [key, el] of [['temperature', els.temperature], ['maxTokens', els.maxTokens], ['system', els.system],
                         ['apiKey', els.apiKey], ['topK', els.topK]]) {
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
  // Grounding is offered when the server has a search index: /v1/search
  // answers a query without words with 400 then, and 404 without an index.
  try {
    const r = await fetch('/v1/search?q=', { headers: headers() });
    hasIndex = r.status !== 404 && r.status !== 401;
  } catch (_) { hasIndex = false; }
  els.groundingBox.hidden = !hasIndex;
  els.groundingLegend.hidden = !hasIndex;
}

// "text with **marks**" -> a fragment with <mark> elements (text nodes only: no HTML from the posts).
function marked(s) {
  const frag = document.createDocumentFragment();
  s.split('**').forEach((part, i) => {
    if (!part) return;
    if (i % 2) frag.append(Object.assign(document.createElement('mark'), { textContent: part }));
    else frag.append(document.createTextNode(part));
  });
  return frag;
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
// A citing sentence or marker lights up its source, and the reverse.
function lightSource(target, on) {
  const el = target.closest && target.closest('[data-source]');
  const bubble = target.closest && target.closest('.bubble');
  if (!el || !bubble) return;
  for (const x of bubble.querySelectorAll(`[data-source="${el.dataset.source}"]`)) x.classList.toggle('hl', on);
}
els.messages.addEventListener('mouseover', (e) => lightSource(e.target, true));
els.messages.addEventListener('mouseout', (e) => lightSource(e.target, false));

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
    this.sources = null;     // the posts the answer was grounded in (delta.sources)
    this.annotations = null; // url_citation annotations (the last delta)
  }
  // The sources panel under the answer: number, author, date, link, snippet.
  showSources(sources) {
    this.sources = sources;
    const box = document.createElement('div');
    box.className = 'sources';
    const h = document.createElement('div');
    h.className = 'sources-head';
    h.textContent = sources.length ? `Sources (${sources.length})` : 'No posts matched this question';
    box.append(h);
    const ol = document.createElement('ol');
    for (const src of sources) {
      const li = document.createElement('li');
      li.dataset.source = src.index;
      const head = document.createElement('div');
      head.className = 'src-head';
      head.append(Object.assign(document.createElement('span'), { className: 'num', textContent: `[${src.index}]` }));
      const who = src.author || 'unknown author';
      if (src.url && /^https?:\/\//.test(src.url)) {
        head.append(Object.assign(document.createElement('a'), { href: src.url, target: '_blank', rel: 'noopener noreferrer',
                                                                 textContent: who }));
      } else head.append(Object.assign(document.createElement('span'), { className: 'who-src', textContent: who }));
      if (src.created_at) head.append(Object.assign(document.createElement('span'), { className: 'date', textContent: src.created_at.slice(0, 10) }));
      li.append(head);
      const snip = document.createElement('div');
      snip.className = 'snippet';
      snip.append(marked(src.highlight || src.snippet || ''));
      li.append(snip);
      ol.append(li);
    }
    box.append(ol);
    this.sourcesBox = box;
    this.ui.bubble.append(box);
  }
  // After the reply: the marker [N] of each annotation and the sentence
  // before it are marked in the shaded tokens (the token spans keep their
  // shading), and each source lists the sentences that cite it.
  showCitations(annotations) {
    this.annotations = annotations;
    if (!this.sources || !annotations || !annotations.length) return;
    const cps = Array.from(this.content);
    const spans = [];  // [node, start, end] in code points
    let at = 0;
    for (const n of this.ui.body.childNodes) {
      const len = Array.from(n.textContent).length;
      spans.push([n, at, at + len]);
      at += len;
    }
    const ends = new Set(['.', '!', '?', '\n', '。', '！', '？']);
    const citedBy = new Map();
    for (const a of annotations) {
      const c = a.url_citation;
      if (!c) continue;
      const num = Number(cps.slice(c.start_index, c.end_index).join('').replace(/[^0-9]/g, ''));
      if (!num) continue;
      let s0 = c.start_index;
      for (; s0 > 0; s0--) { // back to the end of the previous sentence (not a decimal point)
        const ch = cps[s0 - 1];
        if (ends.has(ch) && !(ch === '.' && /[0-9]/.test(cps[s0 - 2] || '') && /[0-9]/.test(cps[s0] || ''))) break;
      }
      while (s0 < c.start_index && /\s/.test(cps[s0])) s0++;
      for (const [node, a0, a1] of spans) {
        if (!(node instanceof HTMLElement)) continue;
        if (a1 > c.start_index && a0 < c.end_index) { node.classList.add('cite'); node.dataset.source = num; }
        else if (a1 > s0 && a0 < c.start_index) { node.classList.add('cites'); node.dataset.source = num; }
      }
      // The sentence as the source lists it: other markers out, each sentence once.
      const sentence = cps.slice(s0, c.start_index).join('').replace(/\[\d{1,3}\]/g, '').replace(/\s+/g, ' ').trim();
      if (!citedBy.has(num)) citedBy.set(num, []);
      if (sentence && !citedBy.get(num).includes(sentence)) citedBy.get(num).push(sentence);
    }
    for (const li of this.sourcesBox.querySelectorAll('li')) {
      const list = citedBy.get(Number(li.dataset.source));
      if (!list) continue;
      li.classList.add('cited');
      if (!list.length) continue;
      const by = document.createElement('div');
      by.className = 'cited-by';
      by.textContent = 'cited by: ' + list.map((x) => '“' + (x.length > 90 ? x.slice(0, 90) + '…' : x) + '”').join(' · ');
      li.append(by);
    }
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
        ...(hasIndex && els.grounding.checked ? { grounding: { index: true, top_k: Math.min(10, Math.max(1, Number(els.topK.value) || 3)) } } : {}),
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
      if (c.delta && c.delta.sources) reply.showSources(c.delta.sources);
      if (c.delta && c.delta.annotations) reply.annotations = c.delta.annotations;
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
  if (reply.sources && reply.annotations) reply.showCitations(reply.annotations);
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
