// grounding_client.mjs — search and grounded chat of `truthgpt serve --index`
// through the official `openai` npm client and fetch: GET /v1/search (ranking,
// filters, bad queries), grounded chat whole and streamed (the extra fields
// `sources` and `annotations` reach the client untouched; every url_citation's
// indices point at a citation marker [N] of the text, and every marker has
// one), retrieval from the last user message, and request errors.
// Usage: node tests/grounding_client.mjs BASE_URL API_KEY MODEL_NAME
import OpenAI from 'openai';
import { checker, requireLocalBase } from './lib_test.mjs';

const [base, apiKey, modelName] = process.argv.slice(2);
requireLocalBase(apiKey && modelName ? base : '', 'node grounding_client.mjs http://127.0.0.1:PORT API_KEY MODEL_NAME');
const client = new OpenAI({ baseURL: base + '/v1', apiKey, maxRetries: 0, timeout: 120000 });
const { check, failed } = checker();
const auth = { headers: { Authorization: `Bearer ${apiKey}` } };
const search = async (qs) => {
  const r = await fetch(`${base}/v1/search?${qs}`, auth);
  return { status: r.status, body: await r.json() };
};

// --- /v1/search
let r = await search('q=sourdough+bread&limit=3');
check(r.status === 200 && r.body.object === 'list' && r.body.data.map((x) => x.id).sort().join() === 'p1,p3,p5',
      '/v1/search finds the three posts with either word', r.body);
check(r.body.data[0].id === 'p3', 'the post with both words ranks first', r.body.data.map((x) => x.id));
check(r.body.data.every((x, i) => i === 0 || x.score <= r.body.data[i - 1].score), 'ordered by score');
const p1 = r.body.data.find((x) => x.id === 'p1');
check(p1 && p1.author === '@carol' && p1.url === 'https://x.com/carol/status/501' && p1.created_at.startsWith('2024-01-08') &&
      p1.highlight.includes('**Sourdough**'), 'a hit carries author, URL, date and a highlighted snippet', p1);
r = await search('q=sourdough&author=erin');
check(r.status === 200 && r.body.data.length === 1 && r.body.data[0].id === 'p3', 'author filter', r.body);
r = await search('q=sourdough+lighthouse&since=2024-02&until=2024-12');
check(r.status === 200 && r.body.data.map((x) => x.id).join() === 'p2', 'date filter', r.body);
r = await search('q=' + encodeURIComponent('"NEAR( * )) lighthouse^ col:'));
check(r.status === 200 && r.body.data.length === 1 && r.body.data[0].id === 'p2', 'FTS5 syntax in q is plain text', r.body);
r = await search('q=' + encodeURIComponent('灯塔'));
check(r.status === 200 && r.body.data.length === 1 && r.body.data[0].id === 'p4', 'a Chinese word finds the Chinese post', r.body);
for (const [qs, param] of [['q=', 'q'], ['limit=2', 'q'], ['q=%22*()', 'q'], ['q=a&limit=0', 'limit'], ['q=a&since=soon', 'since']]) {
  r = await search(qs);
  check(r.status === 400 && r.body.error && r.body.error.param === param, `/v1/search?${qs} is a 400 naming ${param}`, r);
}
r = await search('q=' + 'sourdough+'.repeat(600));
check(r.status === 200 && r.body.data.length >= 1, 'a 6 KB query is answered', r.status);
const noKey = await fetch(`${base}/v1/search?q=x`);
check(noKey.status === 401, '/v1/search needs the API key', noKey.status);

// --- grounded chat, whole
const messages = [
  { role: 'user', content: 'Tell me about the lighthouse.' },
  { role: 'assistant', content: 'It has a keeper.' },
  { role: 'user', content: 'What about sourdough bread?' },
];
const req = { model: modelName, messages, max_tokens: 48, temperature: 0, grounding: { index: true, top_k: 2 } };
const chat = await client.chat.completions.create(req);
const msg = chat.choices[0].message;
check(Array.isArray(msg.sources) && msg.sources.length === 2, 'message.sources holds top_k posts', msg.sources);
check(msg.sources.map((s) => s.id).join() === 'p3,p1', 'retrieved for the last user message (sourdough, not the lighthouse)',
      msg.sources.map((s) => s.id));
check(msg.sources.every((s, i) => s.index === i + 1 && typeof s.snippet === 'string' && 'author' in s && 'created_at' in s &&
                        typeof s.score === 'number' && typeof s.title === 'string'),
      'each source has index, id, snippet, author, date, score, title', msg.sources[0]);

// The markers [N] (N a source number) in the text, in code points, as OpenAI counts them.
function markers(text, n) {
  const cps = Array.from(text), out = [];
  const s = cps.join('');
  for (const m of s.matchAll(/\[(\d{1,3})\]/g)) {
    const v = Number(m[1]);
    if (m[1][0] === '0' || v < 1 || v > n) continue;
    const start = Array.from(s.slice(0, m.index)).length;
    out.push({ start, end: start + m[0].length, v });
  }
  return out;
}
function checkAnnotations(text, annotations, sources, what) {
  const want = markers(text, sources.length);
  check(want.length >= 1, `${what}: the answer cites at least one source (the test model is trained to)`, text);
  check(Array.isArray(annotations) && annotations.length === want.length, `${what}: one annotation per marker`,
        { want: want.length, got: annotations && annotations.length, text });
  const cps = Array.from(text);
  let okAll = true;
  for (let i = 0; i < Math.min(want.length, (annotations || []).length); i++) {
    const a = annotations[i], c = a.url_citation, src = sources[want[i].v - 1];
    const marked = cps.slice(c.start_index, c.end_index).join('');
    const url = src.url || `post:${src.id}`;
    if (a.type !== 'url_citation' || c.start_index !== want[i].start || c.end_index !== want[i].end ||
        marked !== `[${want[i].v}]` || c.url !== url || c.title !== src.title) {
      okAll = false;
      console.log('   annotation', i, JSON.stringify(a), 'marker', JSON.stringify(want[i]), 'text there', JSON.stringify(marked));
    }
  }
  check(okAll, `${what}: each annotation's indices hold its marker [N], with source N's url and title`);
}
checkAnnotations(msg.content, msg.annotations, msg.sources, 'whole reply');

// --- the same, streamed: sources first, annotations last, same text
const stream = await client.chat.completions.create({ ...req, stream: true });
let joined = '', streamSources = null, streamAnnotations = null, firstHasSources = false, n = 0;
for await (const ch of stream) {
  const d = ch.choices[0] && ch.choices[0].delta;
  if (!d) continue;
  if (d.sources) { streamSources = d.sources; firstHasSources = n === 0; }
  if (d.annotations) streamAnnotations = d.annotations;
  if (d.content) joined += d.content;
  n++;
}
check(firstHasSources && JSON.stringify(streamSources) === JSON.stringify(msg.sources), 'streamed: the first delta carries the same sources');
check(joined === msg.content, 'streamed text equals the whole reply at temperature 0', { joined, whole: msg.content });
check(JSON.stringify(streamAnnotations) === JSON.stringify(msg.annotations), 'streamed: the last delta carries the same annotations');
checkAnnotations(joined, streamAnnotations, streamSources, 'streamed reply');

// --- grounding changes the prompt; off means no sources
const plain = await client.chat.completions.create({ ...req, grounding: { index: false } });
check(plain.choices[0].message.sources === undefined && plain.choices[0].message.annotations === undefined,
      'grounding.index false: no sources, no annotations');
check(chat.usage.prompt_tokens > plain.usage.prompt_tokens + 50, 'the grounded prompt holds the sources',
      [chat.usage.prompt_tokens, plain.usage.prompt_tokens]);
const dflt = await client.chat.completions.create({ ...req, grounding: true });
check(dflt.choices[0].message.sources.length === 3, 'grounding: true uses the server default top_k (3)', dflt.choices[0].message.sources.length);
const none = await client.chat.completions.create({ ...req, messages: [{ role: 'user', content: 'zzyzx qwv' }] });
check(Array.isArray(none.choices[0].message.sources) && none.choices[0].message.sources.length === 0 &&
      none.choices[0].message.annotations.length === 0, 'nothing found: empty sources and annotations');

for (const [g, param] of [[{ top_k: 0 }, 'grounding.top_k'], [{ top_k: 11 }, 'grounding.top_k'], [{ index: 'yes' }, 'grounding.index'],
                          ['on', 'grounding']]) {
  try {
    await client.chat.completions.create({ ...req, grounding: g });
    check(false, `grounding ${JSON.stringify(g)} is refused`);
  } catch (e) {
    check(e instanceof OpenAI.APIError && e.status === 400 && e.param === param, `grounding ${JSON.stringify(g)}: 400 naming ${param}`,
          { status: e.status, param: e.param, message: e.message });
  }
}
// A 100 KB question: retrieval copes, the prompt is too long for this model: a 400, not a crash.
try {
  await client.chat.completions.create({ ...req, messages: [{ role: 'user', content: 'sourdough (NEAR "* '.repeat(5000) }] });
  check(false, 'a 100 KB grounded question is refused');
} catch (e) {
  check(e instanceof OpenAI.APIError && e.status === 400 && e.code === 'context_length_exceeded',
        'a 100 KB grounded question: 400 context_length_exceeded', { status: e.status, code: e.code });
}
console.log(failed() ? `grounding_client: ${failed()} failed` : 'grounding_client: all passed');
process.exit(failed() ? 1 : 0);
