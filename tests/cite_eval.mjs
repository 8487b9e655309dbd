// cite_eval.mjs — how often a model served by `truthgpt serve` cites the
// right source on held-out grounded conversations (chat-data --grounded's
// val file): each conversation's prompt (sources + question) is sent
// without its answer, greedy, and the first marker [N] of the reply is
// compared with the conversation's "grounding.cite". Prints one JSON line
// {"n", "correct", "accuracy", "chance", "no_marker"}; exits 1 when accuracy
// is below MIN (default 0: report only).
// Usage: node tests/cite_eval.mjs BASE_URL VAL_JSONL [N] [MIN]
import fs from 'node:fs';

const [base, file, nArg, minArg] = process.argv.slice(2);
if (!base || !base.startsWith('http://127.0.0.1:') || !file) {
  console.error('usage: node cite_eval.mjs http://127.0.0.1:PORT VAL_JSONL [N] [MIN]');
  process.exit(2);
}
const convs = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)).slice(0, Number(nArg) || 1e9);
let correct = 0, noMarker = 0, chance = 0;
const misses = [];
for (const c of convs) {
  const messages = c.messages.slice(0, -1);
  const r = await fetch(`${base}/v1/chat/completions`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ messages, max_tokens: 48, temperature: 0 }),
  });
  const j = await r.json();
  if (!r.ok) throw new Error(JSON.stringify(j));
  const text = j.choices[0].message.content;
  const m = text.match(/\[(\d{1,2})\]/);
  chance += 1 / c.grounding.sources;
  if (!m) noMarker++;
  else if (Number(m[1]) === c.grounding.cite) correct++;
  else if (misses.length < 3) misses.push({ want: c.grounding.cite, got: text });
}
const n = convs.length;
const out = { n, correct, accuracy: n ? correct / n : 0, chance: n ? chance / n : 0, no_marker: noMarker };
console.log(JSON.stringify(out));
for (const m of misses) console.log('miss: ' + JSON.stringify(m));
process.exit(out.accuracy < Number(minArg || 0) ? 1 : 0);
