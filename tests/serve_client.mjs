// serve_client.mjs — the official `openai` npm client against `truthgpt serve`:
// models list, chat completion, streamed chat completion (joined deltas equal
// the non-streamed text at temperature 0), completions (plain and streamed),
// logprobs with top alternatives in both shapes, stop sequences, seeds, and
// 400 errors raised as the client's APIError.
// Usage: node tests/serve_client.mjs BASE_URL API_KEY MODEL_NAME
import OpenAI from 'openai';
import { checker, finish as finishChecks, requireLocalBase } from './lib_test.mjs';

const [base, apiKey, modelName] = process.argv.slice(2);
requireLocalBase(apiKey && modelName ? base : '', 'node serve_client.mjs http://127.0.0.1:PORT API_KEY MODEL_NAME');
const client = new OpenAI({ baseURL: base + '/v1', apiKey, maxRetries: 0, timeout: 120000 });
const { check, failed } = checker();
const messages = [
  { role: 'system', content: 'Be brief.' },
  { role: 'user', content: 'The sea?' },
];
const utf8 = (s) => Buffer.from(s, 'utf8');

// models
const models = await client.models.list();
check(models.data.length === 1 && models.data[0].id === modelName && models.data[0].object === 'model',
      'models.list names the served model', models.data);

// chat, greedy
const chat = await client.chat.completions.create({ model: modelName, messages, max_tokens: 24, temperature: 0 });
const text = chat.choices[0].message.content;
check(chat.object === 'chat.completion' && chat.id.startsWith('chatcmpl-'), 'chat completion object and id', chat.id);
check(chat.choices.length === 1 && chat.choices[0].message.role === 'assistant' && typeof text === 'string',
      'one assistant choice with text content');
check(['stop', 'length'].includes(chat.choices[0].finish_reason), 'finish_reason stop or length', chat.choices[0].finish_reason);
check(chat.usage.completion_tokens >= 1 && chat.usage.completion_tokens <= 24 &&
      chat.usage.total_tokens === chat.usage.prompt_tokens + chat.usage.completion_tokens && chat.usage.prompt_tokens > 10,
      'usage counts add up and respect max_tokens', chat.usage);
if (chat.choices[0].finish_reason === 'length') check(chat.usage.completion_tokens === 24, 'length means max_tokens tokens');

// the same request streamed: the joined deltas equal the text
const stream = await client.chat.completions.create({ model: modelName, messages, max_tokens: 24, temperature: 0,
                                                       stream: true, stream_options: { include_usage: true } });
let joined = '', chunks = 0, finish = null, usage = null, role = null;
for await (const ch of stream) {
  chunks++;
  if (ch.usage) usage = ch.usage;
  const c = ch.choices[0];
  if (!c) continue;
  if (c.delta.role) role = c.delta.role;
  if (c.delta.content) joined += c.delta.content;
  if (c.finish_reason) finish = c.finish_reason;
}
check(joined === text, 'streamed deltas joined equal the non-streamed text (temperature 0)', { joined, text });
check(role === 'assistant' && finish === chat.choices[0].finish_reason && chunks >= 3, 'stream carries role and finish_reason',
      { role, finish, chunks });
check(usage && usage.completion_tokens === chat.usage.completion_tokens && usage.prompt_tokens === chat.usage.prompt_tokens,
      'stream_options.include_usage sends the usage', usage);

// sampled with a seed: streamed and not streamed give the same text (a
// briefly trained model's greedy text is dull; a sampled one exercises
// arbitrary bytes, split characters and invalid UTF-8 on both paths)
for (const seed of [11, 12, 13]) {
  const p = { model: modelName, messages, max_tokens: 40, temperature: 0.9, seed };
  const plain = (await client.chat.completions.create(p)).choices[0].message.content;
  let streamed = '';
  for await (const ch of await client.chat.completions.create({ ...p, stream: true })) streamed += ch.choices[0]?.delta?.content ?? '';
  check(streamed === plain && plain.length > 0, `seed ${seed}: streamed deltas joined equal the non-streamed text`, { streamed, plain });
}

// logprobs with top alternatives (chat shape)
const lp = await client.chat.completions.create({ model: modelName, messages, max_tokens: 12, temperature: 0,
                                                  logprobs: true, top_logprobs: 3 });
const entries = lp.choices[0].logprobs?.content ?? [];
check(entries.length === lp.usage.completion_tokens || (lp.choices[0].finish_reason === 'stop' &&
      entries.length === lp.usage.completion_tokens - 1), 'one logprobs entry per generated token',
      { entries: entries.length, usage: lp.usage });
let lpOk = true, greedyOk = true, massOk = true;
for (const e of entries) {
  if (typeof e.token !== 'string' || !(e.logprob <= 0) || !Array.isArray(e.bytes) || e.top_logprobs.length !== 3) lpOk = false;
  for (let k = 1; k < e.top_logprobs.length; k++) if (e.top_logprobs[k].logprob > e.top_logprobs[k - 1].logprob) lpOk = false;
  // greedy: the chosen token is the most likely one (ties may pick another id of equal probability)
  if (Math.abs(e.logprob - e.top_logprobs[0].logprob) > 1e-5) greedyOk = false;
  const mass = e.top_logprobs.reduce((s, t) => s + Math.exp(t.logprob), 0);
  if (mass > 1 + 1e-4) massOk = false;
}
check(entries.length > 0 && lpOk, 'each entry has token, logprob <= 0, bytes, 3 alternatives sorted by logprob');
check(greedyOk, 'at temperature 0 the chosen token has the top alternative\'s logprob');
check(massOk, 'the alternatives\' probabilities sum to at most 1');
const lpBytes = Buffer.concat(entries.map((e) => Buffer.from(e.bytes)));
if (lp.choices[0].finish_reason === 'length')
  check(lpBytes.equals(utf8(lp.choices[0].message.content)), 'the tokens\' bytes join to the reply', lp.choices[0].message.content);
check(lp.choices[0].message.content === text.slice(0, lp.choices[0].message.content.length),
      'the greedy reply is a prefix of the longer greedy reply');

// completions, plain and streamed, with the legacy logprobs shape
const prompt = 'The sea is';
const comp = await client.completions.create({ model: modelName, prompt, max_tokens: 10, temperature: 0, logprobs: 2 });
const ctext = comp.choices[0].text;
check(comp.object === 'text_completion' && typeof ctext === 'string', 'completion object and text');
const clp = comp.choices[0].logprobs;
check(clp && clp.tokens.length === comp.usage.completion_tokens - (comp.choices[0].finish_reason === 'stop' ? 1 : 0) &&
      clp.token_logprobs.length === clp.tokens.length && clp.top_logprobs.length === clp.tokens.length &&
      clp.text_offset.length === clp.tokens.length, 'completions logprobs: tokens, token_logprobs, top_logprobs, text_offset', clp);
let offOk = clp.text_offset[0] === 0, off = 0;
for (let i = 0; i < clp.tokens.length; i++) {
  if (clp.text_offset[i] !== off) offOk = false;
  off += utf8(clp.tokens[i]).length;
  if (Object.keys(clp.top_logprobs[i]).length < 1 || Object.keys(clp.top_logprobs[i]).length > 2) offOk = false;
}
check(offOk, 'text_offset advances by each token and top_logprobs maps up to 2 alternatives', clp.text_offset);
const cstream = await client.completions.create({ model: modelName, prompt, max_tokens: 10, temperature: 0, stream: true });
let cjoined = '';
for await (const ch of cstream) cjoined += ch.choices[0]?.text ?? '';
check(cjoined === ctext, 'streamed completion equals the plain one', { cjoined, ctext });

// stop sequences end the text exactly before the first match
if (text.length >= 4) {
  const stop = text.slice(2, 4);
  const st = await client.chat.completions.create({ model: modelName, messages, max_tokens: 24, temperature: 0, stop: [stop] });
  check(st.choices[0].message.content === text.slice(0, text.indexOf(stop)) && st.choices[0].finish_reason === 'stop',
        `stop ${JSON.stringify(stop)} cuts the reply before its first match`, st.choices[0].message.content);
}

// seeds: same seed, same sample at temperature 1
const s1 = await client.chat.completions.create({ model: modelName, messages, max_tokens: 16, temperature: 1, seed: 7 });
const s2 = await client.chat.completions.create({ model: modelName, messages, max_tokens: 16, temperature: 1, seed: 7 });
check(s1.choices[0].message.content === s2.choices[0].message.content, 'the same seed gives the same sample');

// errors arrive as the client's APIError with OpenAI's fields
async function expectError(what, params, status, param) {
  try {
    await client.chat.completions.create({ model: modelName, messages, ...params });
    check(false, `${what}: raises an error`);
  } catch (e) {
    check(e instanceof OpenAI.APIError && e.status === status && (param === undefined || e.param === param) &&
          typeof e.message === 'string' && e.error && typeof e.error.type === 'string',
          `${what}: APIError ${status}${param ? ' param ' + param : ''}`, { status: e.status, param: e.param, msg: e.message });
  }
}
await expectError('max_tokens over the cap', { max_tokens: 100000 }, 400, 'max_tokens');
await expectError('n = 2', { n: 2 }, 400, 'n');
await expectError('temperature 3', { temperature: 3 }, 400, 'temperature');
await expectError('top_logprobs 21', { logprobs: true, top_logprobs: 21 }, 400, 'top_logprobs');
try {
  await new OpenAI({ baseURL: base + '/v1', apiKey: apiKey + 'x', maxRetries: 0 }).models.list();
  check(false, 'a wrong API key is refused');
} catch (e) {
  check(e instanceof OpenAI.AuthenticationError && e.status === 401, 'a wrong API key raises AuthenticationError 401', e.status);
}

finishChecks(failed, 'openai client');
